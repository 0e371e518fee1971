"""One real `edgewatch run --once` among hostile peers: every bad answer costs only itself.

The issue this suite answers began with whole cycles lost — every target's data, the healthy
control's too — to one certificate or one DNS record. Here a single cycle meets, at once, the
hostile DNS resolvers of ``faults_dns_peers`` and the hostile edges of ``faults_tls_peers``
(all on loopback), beside a healthy resolver and a healthy edge. The process must exit 0 within
its budget, the control target must be measured as a success, and every hostile case must be in
the store as a classified document of its own.
"""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import time
from pathlib import Path

from faults_cycle_helpers import EDGEWATCH, store_lines
from faults_dns_peers import RR, Reply, Request, a, addresses_reply, closed_udp_port, dns_peer
from faults_dns_peers import response as dns_response
from faults_tls_peers import EDGE_NAME, shared_pki, start_edge, start_leaf_edge, unparsable_leaves

DNS_TIMEOUT, CONNECT, TLS, HTTP = 1.0, 0.5, 0.5, 0.5

# Target → the edge behind it (every target resolves to 127.0.0.1; its port picks the edge).
EDGES = {
    "control.faults.test": "ok",
    "silent.faults.test": "silent",
    "garbage.faults.test": "garbage_server_hello",
    "e9san.faults.test": "non_utf8_dns_san",
    "expired.faults.test": "expired",
    "status503.faults.test": "http_503",
    "nohttp.faults.test": "http_no_answer",
}
UNPARSABLE = ("printable_star_cn", "t61_latin1_cn", "truncated_policies", "ip_san_3_bytes")


def _one(make):
    return lambda req: [Reply(make(req))]


def _ch_class(req: Request) -> bytes:
    rdata = b"\x02ch\x00" + struct.pack("!H", 0x1234)  # CH A: a domain and a 16-bit address
    return dns_response(req, [RR(req.qname, "A", rdata, rclass="CH")])


def _cname_loop(req: Request) -> bytes:
    q = req.qname
    return dns_response(req, [RR(q, "CNAME", b"\x04loop\x06faults\x04test\x00"),
                              RR("loop.faults.test.", "CNAME", _wire(q))])


def _wire(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\x00"


# Resolver → (UDP handler, TCP handler) of its peer; None: a closed UDP port.
RESOLVERS = {
    "healthy": (addresses_reply("127.0.0.1"), None),
    "wrong-id-first": (lambda r: [Reply(dns_response(r, [RR(r.qname, "A", a("127.0.0.1"))],
                                                     rid=(r.id + 1) & 0xFFFF)),
                                  Reply(dns_response(r, [RR(r.qname, "A", a("127.0.0.1"))]),
                                        at=0.05)], None),
    "class-ch": (_one(_ch_class), None),
    "class-hs": (_one(lambda r: dns_response(r, [RR(r.qname, "A", a("127.0.0.1"),
                                                    rclass="HS")])), None),
    "cname-loop": (_one(_cname_loop), None),
    "garbage": (_one(lambda r: struct.pack("!H", r.id) + b"\x81\x80" + b"\xff" * 40), None),
    "truncated-slow-tcp": (lambda r: [Reply(dns_response(r, tc=True), at=0.3)],
                           addresses_reply("127.0.0.1", at=0.9)),
    "closed-port": None,
}


def _config(tmp: Path, resolvers: dict[str, int], edges: dict[str, int], ca: Path) -> Path:
    lines = ['[observer]', 'name = "hostile"', '', '[schedule]', 'interval = "15m"',
             'jitter = "0s"', '', '[timeouts]', f'dns = {DNS_TIMEOUT}', f'connect = {CONNECT}',
             f'tls = {TLS}', f'http = {HTTP}', '', '[tls]', f'ca_file = {json.dumps(str(ca))}',
             '', '[rdns]', 'enabled = false', '', '[state]',
             f'dir = {json.dumps(str(tmp / "state"))}', '', '[store]',
             f'dir = {json.dumps(str(tmp / "data"))}', '', '[sinks]', 'enabled = ["ndjson"]', '']
    for name, port in edges.items():
        lines += ['[[targets]]', f'name = "{name}"', 'record_types = ["A"]', f'port = {port}',
                  f'sni = "{EDGE_NAME}"', 'http_path = "/"', '']
    for name, port in resolvers.items():
        lines += ['[[resolvers]]', f'name = "{name}"', 'address = "127.0.0.1"',
                  f'port = {port}', '']
    path = tmp / "edgewatch.toml"
    path.write_text("\n".join(lines))
    return path


def test_one_cycle_among_hostile_peers_measures_everything_else(tmp_path: Path) -> None:
    pki = shared_pki()
    leaves = unparsable_leaves(pki)
    with contextlib.ExitStack() as stack:
        edges = {name: stack.enter_context(start_edge(kind, pki)).port
                 for name, kind in EDGES.items()}
        for kind in UNPARSABLE:
            name = f"{kind.replace('_', '-')}.faults.test"
            edges[name] = stack.enter_context(start_leaf_edge(leaves[kind])).port
        ports = {}
        for name, handlers in RESOLVERS.items():
            if handlers is None:
                ports[name] = closed_udp_port()
                continue
            udp, tcp = handlers
            ports[name] = stack.enter_context(dns_peer(udp, tcp=tcp)).port
        config = _config(tmp_path, ports, edges, pki.ca_file)
        started = time.monotonic()
        proc = subprocess.run([EDGEWATCH, "run", "--config", str(config), "--once", "--quiet"],
                              capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    # One cycle is bounded by its deadlines (DNS 1 s, then connect + TLS + HTTP), not by the
    # number of peers; a generous bound for a shared machine, start-up included.
    assert took < 20, took

    checks = store_lines(tmp_path / "data", "checks")
    by = {}
    for doc in checks:
        by.setdefault((doc["dns.question.name"], doc["edgewatch.resolver.name"]), []).append(doc)
    # Every target × resolver is in the store: nothing was lost to its neighbours.
    assert set(by) == {(t, r) for t in edges for r in ports}

    def only(target: str, resolver: str) -> dict:
        docs = by[(target, resolver)]
        assert len(docs) == 1, docs
        return docs[0]

    control = only("control.faults.test", "healthy")
    assert control["event.outcome"] == "success" and control["edgewatch.tls.verified"] is True
    assert only("control.faults.test", "wrong-id-first")["event.outcome"] == "success"

    dns_errors = {"class-ch": "dns.unexpected_class", "class-hs": "dns.unexpected_class",
                  "cname-loop": "dns.cname_loop", "garbage": "dns.malformed",
                  "truncated-slow-tcp": "dns.timeout", "closed-port": "dns.network"}
    for resolver, expected in dns_errors.items():
        for target in edges:
            doc = only(target, resolver)
            assert doc["event.outcome"] == "failure" and doc["error.type"] == expected, doc
            assert "destination.ip" not in doc

    edge_errors = {"silent.faults.test": "tls.timeout",
                   "garbage.faults.test": "tls.handshake",
                   "e9san.faults.test": "tls.certificate_unparsable",
                   "expired.faults.test": "tls.verify",
                   "status503.faults.test": "http.status",
                   "nohttp.faults.test": "http.timeout"}
    for target, expected in edge_errors.items():
        doc = only(target, "healthy")
        assert doc["destination.ip"] == "127.0.0.1"
        assert doc["event.outcome"] == "failure" and doc["error.type"] == expected, doc
    assert only("status503.faults.test", "healthy")["http.response.status_code"] == 503

    # Certificates cryptography cannot parse: handshakes as OpenSSL judged them, described
    # best-effort, the fingerprint always there.
    for kind in UNPARSABLE:
        doc = only(f"{kind.replace('_', '-')}.faults.test", "healthy")
        assert doc["tls.established"] is True and doc["edgewatch.tls.verified"] is True, doc
        assert doc["event.outcome"] == "success", doc
        assert len(doc["tls.server.hash.sha256"]) == 64
        assert doc["edgewatch.certificate.parse_error"], doc
