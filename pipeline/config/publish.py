"""``[publish]``: the living allowlist ``edgewatch allowlist serve`` publishes.

The rule's parameters (docs/LIVING_LIST.md, ``pipeline.publish.rule``), where the list goes (an
HTTP endpoint, a folder of files replaced by rename, an nftables set) and who may fetch it. A
token or password is read from a file named here, never written in the config itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.checks import parse_host_port
from pipeline.config.model import default
from pipeline.config.reader import Reader

BY = ("ip", "prefix24", "prefix")
KEYS = {"listen", "by", "hold", "window", "max_entries", "floor", "stale_after", "refresh",
        "targets", "dir", "nft_table", "nft_set", "nft_command", "token_file", "basic_user",
        "basic_password_file", "tls_cert_file", "tls_key_file"}


@dataclass(frozen=True)
class Publish:
    listen: tuple[str, int] | None = None  # None: files / nft only
    by: str = "ip"
    hold_s: float = 6 * 3600.0
    window_s: float = 24 * 3600.0
    max_entries: int = 1000
    floor: float = 0.5
    stale_after_s: float = 3600.0
    refresh_s: float = 60.0  # scenario seconds, like schedule.interval
    targets: tuple[str, ...] = ()  # empty: every configured target
    directory: Path | None = None
    nft_table: str = "edgewatch"
    nft_set: str | None = None
    nft_command: str = "nft"
    token_file: Path | None = None
    basic_user: str | None = None
    basic_password_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


def parse_publish(r: Reader, parsed: dict[str, Any]) -> dict[str, Any]:
    """``publish``: None when the section is absent (nothing is published)."""
    t, p = r.table("publish"), "publish."
    if not t:
        return {"publish": None}
    r.unknown(t, KEYS, p)
    out = Publish(
        listen=_listen(r, t),
        by=_choice(r, t, "by", BY),
        hold_s=r.duration(t, "hold", p, default(Publish, "hold_s")),
        window_s=r.duration(t, "window", p, default(Publish, "window_s")),
        max_entries=r.integer(t, "max_entries", p, default(Publish, "max_entries"), 1),
        floor=r.share(t, "floor", p, default(Publish, "floor")),
        stale_after_s=r.duration(t, "stale_after", p, default(Publish, "stale_after_s")),
        refresh_s=r.duration(t, "refresh", p, default(Publish, "refresh_s")),
        targets=_targets(r, t, parsed),
        directory=r.path(r.get(t, "dir", p, str)),
        nft_table=_identifier(r, t, "nft_table", default(Publish, "nft_table")),
        nft_set=_identifier(r, t, "nft_set", None),
        nft_command=r.get(t, "nft_command", p, str, default(Publish, "nft_command")),
        token_file=_secret_file(r, t, "token_file"),
        basic_user=r.get(t, "basic_user", p, str),
        basic_password_file=_secret_file(r, t, "basic_password_file"),
        tls_cert_file=_readable(r, t, "tls_cert_file"),
        tls_key_file=_readable(r, t, "tls_key_file"),
    )
    _relations(r, out, parsed)
    return {"publish": out}


def _relations(r: Reader, out: Publish, parsed: dict[str, Any]) -> None:
    """The problems only two keys together show."""
    if out.hold_s <= 0:
        r.fail("publish.hold", "must be positive")
    if out.window_s < out.hold_s:
        r.fail("publish.window", f"must be at least publish.hold ({out.hold_s:g}s): entries "
               "are held on evidence the window reads")
    if out.stale_after_s <= 0:
        r.fail("publish.stale_after", "must be positive")
    speed = parsed["clock"].speed if parsed.get("clock") else 1.0
    if out.refresh_s / speed < 0.1:
        r.fail("publish.refresh", f"{out.refresh_s:g}s at clock.speed {speed:g} is less than "
               "0.1s real between two reads of the evidence")
    if out.listen is None and out.directory is None and out.nft_set is None:
        r.fail("publish", "publishes nowhere: set listen, dir or nft_set")
    if (out.basic_user is None) != (out.basic_password_file is None):
        r.fail("publish.basic_user", "basic_user and basic_password_file go together")
    if out.token_file is not None and out.basic_user is not None:
        r.fail("publish.token_file", "choose a bearer token or basic auth, not both")
    if (out.tls_cert_file is None) != (out.tls_key_file is None):
        r.fail("publish.tls_cert_file", "tls_cert_file and tls_key_file go together")


def _listen(r: Reader, t: Any) -> tuple[str, int] | None:
    value = r.get(t, "listen", "publish.", str)
    if value is None:
        return None
    try:
        return parse_host_port(value, default_port=0)
    except ValueError as exc:
        r.fail("publish.listen", f"{exc} (e.g. \"127.0.0.1:8099\")")
        return None


def _choice(r: Reader, t: Any, key: str, choices: tuple[str, ...]) -> str:
    value = r.get(t, key, "publish.", str, default(Publish, key))
    if value not in choices:
        r.fail(f"publish.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
        return default(Publish, key)
    return value


def _targets(r: Reader, t: Any, parsed: dict[str, Any]) -> tuple[str, ...]:
    names = r.get(t, "targets", "publish.", list, [])
    known = {tg.name for tg in parsed.get("targets", ())}
    for name in names:
        if name not in known:
            r.fail("publish.targets", f"{name!r} is not a configured target")
    return tuple(str(n) for n in names)


def _identifier(r: Reader, t: Any, key: str, fallback: str | None) -> str | None:
    from pipeline.report.allowlist import check_set_name

    value = r.get(t, key, "publish.", str, fallback)
    if value is not None:
        try:
            check_set_name(value)
        except ValueError as exc:
            r.fail(f"publish.{key}", str(exc).replace("set name", "name"))
            return fallback
    return value


def _readable(r: Reader, t: Any, key: str) -> Path | None:
    path = r.path(r.get(t, key, "publish.", str))
    if path is not None and not path.is_file():
        r.fail(f"publish.{key}", f"{path} is not a readable file")
    return path


def _secret_file(r: Reader, t: Any, key: str) -> Path | None:
    """A file holding one secret line: it must exist and not be empty (checked at start)."""
    path = _readable(r, t, key)
    if path is not None and path.is_file():
        try:
            empty = not path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            r.fail(f"publish.{key}", f"{path} cannot be read: {exc}")
            return None
        if empty:
            r.fail(f"publish.{key}", f"{path} is empty")
    return path
