"""Entry point of the lab's own server processes: `python -m lab.serve dns|edges --run-dir D`.

`dns` runs the authoritative server and every fault shim; `edges` runs the TLS edges. Each reads
the run folder's lab.json, writes `<role>.ready` once its sockets are bound (the stack waits for
that file), and exits cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from lab.authserver import AuthServer
from lab.faults import fault_at
from lab.scenario import load_scenario
from lab.shim import FaultShim
from lab.state import LabState
from lab.zone import LabZone


async def _serve_dns(state: LabState) -> list:
    scenario = load_scenario(state.scenario_path)
    plans = state.plan.resolvers(scenario)
    source_views = {p.outgoing: r.view for p, r in zip(plans, scenario.resolvers, strict=True)}
    zone = LabZone(scenario, state.plan, state.clock.speed, source_views)
    auth = AuthServer(zone, state.plan.auth, state.plan.dns_port, state.clock.now)
    await auth.start()
    servers: list = [auth]
    for p, r in zip(plans, scenario.resolvers, strict=True):
        if not p.shimmed:
            continue

        def fault_now(r=r) -> str | None:
            return fault_at(r.faults, scenario.seed, r.name, scenario.start, state.clock.now())

        shim = FaultShim((p.listen, p.port), (p.daemon, p.port), fault_now)
        await shim.start()
        servers.append(shim)
    return servers


async def _serve_edges(state: LabState) -> list:
    from lab.edges import EdgeServer

    scenario = load_scenario(state.scenario_path)
    edges = EdgeServer.from_run_dir(scenario, state.run_dir, state.plan.edge_port,
                                    state.clock.real_at, state.clock.now)
    await edges.start()
    return [edges]


async def _main(role: str, run_dir: Path) -> None:
    state = LabState.load(run_dir)
    servers = await (_serve_dns(state) if role == "dns" else _serve_edges(state))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    (run_dir / f"{role}.ready").write_text("ready\n")
    await stop.wait()
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.serve", description=__doc__)
    parser.add_argument("role", choices=["dns", "edges"])
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_main(args.role, args.run_dir.resolve()))


if __name__ == "__main__":
    main()
