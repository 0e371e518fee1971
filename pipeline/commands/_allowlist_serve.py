"""``edgewatch allowlist serve``: publish the living allowlist the evidence supports.

Reads the configured store (the cluster when ``[elasticsearch]`` is set, so several probes feed
one list) every ``publish.refresh``, applies the rule of ``[publish]`` (docs/LIVING_LIST.md) and
publishes the lists over HTTP, to files replaced by rename and to an nftables set.

Exit status: 0 stopped by SIGTERM/SIGINT, or ``--once`` with healthy lists; 1 ``--once`` with a
stale, held or unreadable list; 2 a bad configuration or an address that cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.commands._common import add_config_argument, load_or_exit, make_clock
from pipeline.config import Config
from pipeline.config.checks import dir_problem
from pipeline.publish.evidence import sightings
from pipeline.publish.rule import Sighting
from pipeline.report.filters import Filters

log = logging.getLogger("edgewatch.publish")

EXAMPLE = """\
example (edgewatch.toml):
  [publish]
  listen = "127.0.0.1:8099"   # GET /lists/<target>.txt, /lists/<target>/v4.txt, /v6.txt
  by = "ip"                   # or prefix24 (/24, IPv6 /48), prefix (announced)
  hold = "6h"                 # an entry stays 6h after its last verified check
  window = "24h"              # evidence read; caps rank by checks in it
  stale_after = "1h"          # /healthz is 503 when the newest verified check is older
  dir = "var/publish"         # also <target>.txt files, replaced by rename
  # nft_set = "edgewatch_allow"  # also inet edgewatch sets edgewatch_allow4/6, one transaction
  # token_file = "/etc/edgewatch/publish.token"  # require Authorization: Bearer <token>

  curl -H 'If-None-Match: "<etag>"' http://127.0.0.1:8099/lists/acme-v02.api.example.txt
"""


def add_serve_parser(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "serve", help="publish the living allowlist over HTTP, to files and an nft set",
        description="Publish, for every target, the addresses seen in successful, verified "
        "checks within publish.hold of the newest one (docs/LIVING_LIST.md states the rule: "
        "additions at the next refresh, removals after hold, never emptied by a probe outage).",
        epilog=EXAMPLE + "\nExit status: 0 stopped by a signal, or --once with healthy lists; "
        "1 --once with a stale, held or unreadable list; 2 bad configuration or listen address.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(p)
    p.add_argument("--once", action="store_true",
                   help="refresh once (files, nft set), print the health lines and exit")
    p.set_defaults(func=run_serve)


def _reader(config: Config) -> Callable[[Filters], Iterable[Sighting]]:
    """A fresh source per refresh: the store's line counters and caches never grow."""
    if config.elasticsearch is not None:
        from pipeline.es.client import make_client
        from pipeline.report.es_source import ElasticsearchSource

        client = make_client(config.elasticsearch)
        ns = config.elasticsearch.namespace
        return lambda f: sightings(ElasticsearchSource(client, namespace=ns), f)
    from pipeline.report.store_source import StoreSource

    return lambda f: sightings(StoreSource(config.store_dir), f)


def run_serve(args: argparse.Namespace) -> int:
    from pipeline.publish.publisher import Publisher

    config = load_or_exit(args.config, writes=False)
    pub = config.publish
    if pub is None:
        print(f"edgewatch allowlist serve: {config.source}: no [publish] section (see "
              "edgewatch allowlist serve --help for an example)", file=sys.stderr)
        return 2
    for key, path in (("state.dir", config.state_dir), ("publish.dir", pub.directory)):
        if path is not None and (why := dir_problem(Path(path), True)):
            print(f"edgewatch allowlist serve: {key}: {why}", file=sys.stderr)
            return 2
    publisher = Publisher(pub, [t.name for t in config.targets], config.state_dir,
                          _reader(config), make_clock(config).now)
    if args.once:
        publisher.refresh()
        ok, lines = publisher.health()
        print("\n".join(lines))
        return 0 if ok else 1
    return _serve(publisher, config)


def _serve(publisher, config: Config) -> int:
    from pipeline.publish.http import make_server

    pub = config.publish
    assert pub is not None
    server = None
    if pub.listen is not None:
        try:
            server = make_server(publisher, pub)
        except OSError as exc:
            print(f"edgewatch allowlist serve: publish.listen {pub.listen[0]}:{pub.listen[1]}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 2
    publisher.refresh()  # before serving: the first fetch gets the list
    if server is not None:
        threading.Thread(target=server.serve_forever, name="publish-http", daemon=True).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    speed = config.clock.speed if config.clock else 1.0
    where = f"http://{_hostport(pub.listen)}" if pub.listen else "files/nft only"
    print(f"edgewatch allowlist serve: publishing {len(publisher.targets)} target(s) at "
          f"{where}, refresh every {pub.refresh_s:g}s", flush=True)
    while not stop.wait(pub.refresh_s / speed):
        publisher.refresh()
    if server is not None:
        server.shutdown()
        server.server_close()
    return 0


def _hostport(listen: tuple[str, int] | None) -> str:
    assert listen is not None
    host, port = listen
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
