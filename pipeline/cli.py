"""``edgewatch``: the command line. Subcommands live in ``pipeline.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import NoReturn

import pipeline.commands

DESCRIPTION = """\
edgewatch measures whether an API behind a CDN can be allowlisted by IP: it asks every configured
resolver for every target on a cadence, checks each answered address with TCP and TLS, tracks how
long each address stays (its IP run), and stores one document per resolver, address and check in
Elasticsearch (or a local ndjson store when no cluster is configured).
"""

# Modules only an extra installs (pyproject.toml), so a missing one is an install step to name.
OPTIONAL_MODULES = {"scipy": "report", "numpy": "report"}


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line naming the argument and the reason, plus where help is: the
    usage block argparse prints first buries the line a person (or a log) needs."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="edgewatch", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = sorted(pkgutil.iter_modules(pipeline.commands.__path__), key=lambda m: m.name)
    for info in (m for m in modules if not m.name.startswith("_")):
        module = importlib.import_module(f"pipeline.commands.{info.name}")
        module.add_parser(sub)
    _verbose_everywhere(parser)
    return parser


def _verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept ``-v`` after any subcommand too (``edgewatch run -v``), counted with the ones
    before it: people put options after the command they are about."""
    seen: set[int] = set()

    def walk(p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    if id(child) in seen:
                        continue
                    seen.add(id(child))
                    if not any("-v" in a.option_strings for a in child._actions):
                        child.add_argument("-v", "--verbose", action="count", default=0,
                                           dest="sub_verbose",
                                           help="more log output (-vv for debug)")
                    walk(child)

    walk(parser)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose += getattr(args, "sub_verbose", 0)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A skipped overlapping run is the scheduler doing its job (max_instances=1), not news.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if args.verbose > 1 else logging.ERROR)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        extra = OPTIONAL_MODULES.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"edgewatch {args.command}: needs {exc.name}, which a plain install leaves out: "
              f"pip install 'edgewatch[{extra}]'", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
