"""Which way of running many TLS handshakes from the event loop costs the least CPU?

    .venv/bin/python bench/bench_tls.py [--rounds 4] [--per-round 200] [--concurrency 8]

Starts the small ``quick`` lab (its TLS edges on loopback, lab CA) in a temporary folder and
runs the same verifying handshake (SNI = the target's name, lab CA, peer certificate in DER,
version and cipher read, then close) through each candidate, ``--concurrency`` in flight:

* ``probe_connect`` — edgewatch's check as it stands (whatever path connect.py takes);
* ``TlsSocket`` — the probe's connection alone (``probe.tls_socket``: memory BIOs, connect and
  handshake on the loop's callbacks), without the check's timer, facts and result;
* ``open_connection(ssl=)`` — asyncio's own TLS streams (memory-BIO ``sslproto``), one call;
* ``start_tls`` — plain ``open_connection``, then ``StreamWriter.start_tls`` (the path
  connect.py took until it moved to the non-blocking SSLSocket);
* ``SSLSocket + add_reader`` — a non-blocking ``SSLSocket`` whose ``do_handshake`` is retried
  from reader/writer callbacks;
* ``SSLSocket + add_reader + close_notify`` — the same, closed with ``unwrap`` (what the probe
  did until 2026-12-06: the second ``SSL_shutdown`` reads the server's session tickets);
* ``MemoryBIO + add_reader`` — the same waits, but OpenSSL works on memory BIOs and the
  handshake's bytes are moved between them and a plain non-blocking socket by hand (what
  asyncio's streams do, without their transport and protocol layers);
* ``threads`` — the whole check as blocking socket calls in a bounded pool of worker threads
  (the ``ssl`` module releases the GIL while OpenSSL works and while the socket waits);
* ``connect in loop + threads`` — the connect on the loop, the handshake in the pool.

``--reference FILE`` adds another ``probe_connect`` (a connect.py of another commit, e.g.
``git show e1baa03:pipeline/probe/connect.py > /tmp/connect_before.py``) as one more candidate.

The candidates run in alternating order for ``--rounds`` rounds so that the load of other work
on the machine falls on all of them alike; CPU per handshake is the process's CPU (all threads)
divided by the handshakes done. Loopback only; every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from probe_common import OpFigures, Work, drive_async, is_loopback, log
from probe_ops import ew_op, probes_for

from pipeline.probe.tls_socket import TlsSocket

Op = Callable[[], Awaitable[tuple[bool, str | None]]]


def _facts(tls: ssl.SSLSocket | ssl.SSLObject) -> bool:
    der = tls.getpeercert(True)
    return bool(der) and tls.version() is not None and tls.cipher() is not None


def reference_op(work: Work, path: Path) -> Op:
    """``probe_connect`` of another connect.py, on the same workload (module loaded by path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("connect_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    probes = probes_for(work)
    assert probes.settings is not None
    ctx = probes.settings.connect.contexts
    connect_spec = module.ConnectSpec(module.tls_contexts(work.ca) if ctx else ctx,
                                      work.connect_timeout, work.tls_timeout)

    async def one() -> tuple[bool, str | None]:
        r = await module.probe_connect(work.edge, work.port, work.server_name, connect_spec)
        return r.ok and r.tls_verified, r.error_type

    return one


def candidates(work: Work, pool: ThreadPoolExecutor) -> dict[str, Op]:
    """The handshake of each candidate, as a coroutine function returning (ok, error)."""
    probes = probes_for(work)
    assert probes.settings is not None
    ctx = probes.settings.connect.contexts[0]
    host, port, sni = work.edge, work.port, work.server_name
    timeout = work.connect_timeout + work.tls_timeout

    async def asyncio_streams() -> tuple[bool, str | None]:
        _reader, writer = await asyncio.open_connection(host, port, ssl=ctx,
                                                       server_hostname=sni)
        ok = _facts(writer.get_extra_info("ssl_object"))
        writer.transport.abort()
        return ok, None

    async def start_tls() -> tuple[bool, str | None]:
        _reader, writer = await asyncio.open_connection(host, port)
        await writer.start_tls(ctx, server_hostname=sni)
        ok = _facts(writer.get_extra_info("ssl_object"))
        writer.transport.abort()
        return ok, None

    async def wait_fd(fd: int, write: bool) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        add, remove = (loop.add_writer, loop.remove_writer) if write else \
            (loop.add_reader, loop.remove_reader)
        add(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            remove(fd)

    async def connected() -> socket.socket:
        """A non-blocking TCP socket connected to the edge (closed if the connect fails)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    async def nonblocking(notify: bool = False) -> tuple[bool, str | None]:
        sock = await connected()
        try:
            tls = ctx.wrap_socket(sock, server_hostname=sni, do_handshake_on_connect=False)
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await wait_fd(tls.fileno(), False)
                except ssl.SSLWantWriteError:
                    await wait_fd(tls.fileno(), True)
            ok = _facts(tls)
            if notify:
                with contextlib.suppress(ssl.SSLWantReadError):
                    tls.unwrap()  # close_notify, then a read: the session tickets processed
            tls.close()
            return ok, None
        finally:
            sock.close()

    async def nonblocking_notify() -> tuple[bool, str | None]:
        return await nonblocking(True)

    async def memory_bio() -> tuple[bool, str | None]:
        sock = await connected()
        try:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if outgoing.pending:
                        sock.sendall(outgoing.read())  # a handshake flight: fits the buffer
                    await wait_fd(sock.fileno(), False)
                    data = sock.recv(65536)
                    if not data:
                        return False, "EOF"
                    incoming.write(data)
            if outgoing.pending:
                sock.sendall(outgoing.read())  # the client's Finished
            return _facts(tls), None
        finally:
            sock.close()

    async def tls_socket() -> tuple[bool, str | None]:
        conn = TlsSocket.new(host)
        try:
            ok = _facts(await conn.open(host, port, ctx, sni, lambda: None))
            await conn.close()
        finally:
            conn.abort()
        return ok, None

    def blocking(sock: socket.socket | None = None) -> bool:
        if sock is None:
            sock = socket.create_connection((host, port), timeout)
        else:
            sock.settimeout(timeout)
        with sock, ctx.wrap_socket(sock, server_hostname=sni) as tls:
            return _facts(tls)

    async def threads() -> tuple[bool, str | None]:
        return await asyncio.get_running_loop().run_in_executor(pool, blocking), None

    async def loop_connect_threads() -> tuple[bool, str | None]:
        sock = await connected()
        return await asyncio.get_running_loop().run_in_executor(pool, blocking, sock), None

    return {"probe_connect": ew_op(work, "tls"), "TlsSocket": tls_socket,
            "open_connection(ssl=)": asyncio_streams,
            "start_tls": start_tls, "SSLSocket + add_reader": nonblocking,
            "SSLSocket + add_reader + close_notify": nonblocking_notify,
            "MemoryBIO + add_reader": memory_bio,
            "threads": threads, "connect in loop + threads": loop_connect_threads}


def measure(work: Work, rounds: int, per_round: int, concurrency: int, deadline: float,
            reference: Path | None = None) -> dict[str, list[OpFigures]]:
    """Every candidate once per round, the order rotating by one each round."""
    results: dict[str, list[OpFigures]] = {}

    async def main() -> None:
        with ThreadPoolExecutor(max_workers=concurrency,
                                thread_name_prefix="bench-tls") as pool:
            ops = candidates(work, pool)
            if reference is not None:
                ops = {"probe_connect (reference)": reference_op(work, reference), **ops}
            names = list(ops)
            for name in names:  # warm-up: imports, contexts, the pool's threads
                for _ in range(concurrency):
                    await ops[name]()
            for i in range(rounds):
                order = names[i % len(names):] + names[:i % len(names)]
                for name in order:
                    if time.monotonic() > deadline:
                        return
                    fig = OpFigures(name, "tls", per_round, concurrency=concurrency)
                    results.setdefault(name, []).append(
                        await drive_async(fig, _guarded(ops[name]), deadline))
                log(f"round {i + 1}/{rounds} done")

    asyncio.run(main())
    return results


def _guarded(op: Op) -> Op:
    async def one() -> tuple[bool, str | None]:
        try:
            return await op()
        except (OSError, ssl.SSLError, EOFError) as exc:
            return False, type(exc).__name__
    return one


def table(results: dict[str, list[OpFigures]]) -> str:
    """Markdown: CPU per handshake, median and range over the rounds, relative to start_tls."""
    def med(xs: list[float]) -> float:
        s = sorted(xs)
        return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2

    per = {name: [f.cpu_per_op_us or 0.0 for f in figs] for name, figs in results.items()}
    base = med(per["start_tls"]) if per.get("start_tls") else None
    lines = ["| candidate | CPU µs per handshake (median) | per round | vs start_tls | "
             "handshakes/s | failed |", "|---|---|---|---|---|---|"]
    for name, figs in results.items():
        m = med(per[name])
        rate = med([f.ops_per_s or 0.0 for f in figs])
        failed = sum(f.done - f.ok for f in figs)
        ratio = f"{m / base:.2f}" if base else "—"
        lines.append(f"| {name} | {m:,.0f} | {', '.join(f'{x:,.0f}' for x in per[name])} | "
                     f"{ratio} | {rate:,.0f} | {failed} |")
    return "\n".join(lines)


def lab_work(lab: object) -> Work:
    """The workload against the lab's first 'ok' edge (loopback, checked)."""
    from lab.stack import LabStack
    from pipeline.config import load_config

    assert isinstance(lab, LabStack)
    cfg = load_config(lab.config_path)
    edge = next(a for a in lab.scenario.edge_addresses()
                if lab.scenario.edge_behaviour.get(a, "ok") == "ok")
    if not is_loopback(edge):
        raise SystemExit(f"refusing to run: edge {edge} is not on loopback")
    t = cfg.timeouts
    return Work(cfg.resolvers[0], cfg.targets[0].name, edge, lab.edge_port,
                cfg.targets[0].server_name, lab.ca_path, t.dns, t.connect, max(t.tls, 2.0),
                t.http)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--per-round", type=int, default=200)
    ap.add_argument("--concurrency", default="8,1", help="in flight; a list runs each")
    ap.add_argument("--budget", type=float, default=110.0, help="hard cap, seconds")
    ap.add_argument("--reference", type=Path, help="another connect.py to compare")
    args = ap.parse_args(argv)
    from probe_report import loadavg

    from lab.stack import LabStack

    deadline = time.monotonic() + args.budget
    tmp = Path(tempfile.mkdtemp(prefix="edgewatch-bench-tls-"))
    try:
        load0 = loadavg()
        with LabStack("quick", speed=3600.0, run_dir=tmp / "lab") as lab:
            work = lab_work(lab)
            log(f"edge {work.edge}:{work.port}, SNI {work.server_name}")
            for n in (int(x) for x in args.concurrency.split(",")):
                results = measure(work, args.rounds, args.per_round, n, deadline,
                                  args.reference)
                print(f"\n{n} in flight, {args.rounds} rounds × {args.per_round} handshakes\n")
                print(table(results))
        print(f"\nload average {load0} → {loadavg()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
