"""Reading a deployed allowlist file: every format ``edgewatch allowlist`` writes, and more.

A list in the firewall is the list that matters, whatever tool wrote it, so the reader takes
CIDR lines, plain addresses, an nftables script with ``elements = { ... }`` sets, an ipset
restore file (``add SET CIDR``) and the JSON of ``edgewatch allowlist --format json`` (or a
plain JSON array of strings). ``#`` starts a comment anywhere outside JSON. A line that is none
of these is an error naming ``file:line``: a typo in a firewall list must not silently shrink it.

This module imports nothing of the pipeline: the configuration validates with it, the cycle and
the report read with it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NFT_HEAD = re.compile(r"^\s*(table|set|type|flags|policy|auto-merge|counter|comment|timeout"
                       r"|size|gc-interval)\b")
_TOKEN_SPLIT = re.compile(r"[,\s]+")


class ListError(ValueError):
    """A list file that cannot be used; the message reads ``file:line: reason``."""


@dataclass(frozen=True)
class ParsedList:
    """The networks of one file, in file order (duplicates kept out) and the format found."""

    networks: tuple[Network, ...]
    format: str


def network(text: str) -> Network:
    """``text`` as a network (an address is its /32 or /128); ValueError says why not."""
    value = text.strip()
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an address or a network such as 192.0.2.0/24"
                         ) from None


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _numbered(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        stripped = _strip_comment(line)
        if stripped:
            yield number, stripped


def detect(text: str) -> str:
    """``json``, ``nft``, ``ipset`` or ``cidr`` (also plain addresses), from the first words."""
    for _, line in _numbered(text):
        if line.startswith(("{", "[")):
            return "json"
        word = line.split()[0]
        if word == "table":
            return "nft"
        if word in ("create", "add", "-N", "-A"):
            return "ipset"
        return "cidr"
    return "cidr"


def _cidr(text: str) -> Iterator[tuple[int, str]]:
    for number, line in _numbered(text):
        if len(line.split()) != 1:
            yield number, f"\0expected one address or network per line, got {line!r}"
        else:
            yield number, line


def _ipset(text: str) -> Iterator[tuple[int, str]]:
    for number, line in _numbered(text):
        words = line.split()
        if words[0] in ("create", "-N"):
            continue
        if words[0] in ("add", "-A") and len(words) >= 3:
            yield number, words[2]
        else:
            yield number, f"\0not an ipset restore line (create/add SET CIDR): {line!r}"


def _nft(text: str) -> Iterator[tuple[int, str]]:
    """The tokens of every ``elements = { ... }`` block, which may span lines."""
    inside = False
    for number, line in _numbered(text):
        rest = line
        if not inside:
            if "elements" in rest:
                head, _, rest = rest.partition("{")
                if not re.fullmatch(r"elements\s*=\s*", head.strip() + " "):
                    yield number, f"\0not an nftables elements line: {line!r}"
                    continue
                inside = True
            elif _NFT_HEAD.match(rest) or rest in ("}", "};"):
                continue
            else:
                yield number, f"\0not part of an nftables set: {line!r}"
                continue
        body, closed, _ = rest.partition("}")
        for token in _TOKEN_SPLIT.split(body):
            if token:
                yield number, token
        if closed:
            inside = False
    if inside:
        yield len(text.splitlines()), "\0an elements = { block is not closed"


def _json_line(text: str, value: str) -> int:
    """The line of the first occurrence of ``value`` as a JSON string (for the error)."""
    at = text.find(json.dumps(value))
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _json(text: str) -> Iterator[tuple[int, str]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, f"\0not valid JSON: {exc.msg}"
        return
    items = doc.get("entries") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        yield 1, "\0expected a JSON array of networks or an object with \"entries\""
        return
    for i, item in enumerate(items):
        value = item.get("cidr") if isinstance(item, dict) else item
        if not isinstance(value, str):
            yield 1, f"\0entries[{i}] has no \"cidr\" string"
        else:
            yield _json_line(text, value), value


_READERS = {"cidr": _cidr, "ipset": _ipset, "nft": _nft, "json": _json}


def parse_text(text: str, origin: str) -> ParsedList:
    """The networks of ``text``; ListError names ``origin:line`` of the first bad entry."""
    fmt = detect(text)
    seen: dict[Network, None] = {}
    for number, token in _READERS[fmt](text):
        if token.startswith("\0"):
            raise ListError(f"{origin}:{number}: {token[1:]}")
        try:
            seen.setdefault(network(token), None)
        except ValueError as exc:
            raise ListError(f"{origin}:{number}: {exc}") from None
    return ParsedList(tuple(seen), fmt)


def read_list(path: Path) -> tuple[ParsedList, bytes]:
    """The parsed file and its bytes (the caller fingerprints them); ListError for any problem."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ListError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ListError(f"{path}:{line}: not UTF-8 text") from None
    return parse_text(text, str(path)), raw


class Matcher:
    """Membership of an address in a set of networks: one set lookup per prefix length."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self._by_len: dict[tuple[int, int], set[int]] = {}
        for n in networks:
            self._by_len.setdefault((n.version, n.prefixlen), set()).add(
                int(n.network_address))

    def __contains__(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        value, bits = int(ip), ip.max_prefixlen
        return any(value >> (bits - plen) << (bits - plen) in nets
                   for (version, plen), nets in self._by_len.items() if version == ip.version)
