"""Where a changed list goes besides HTTP: files replaced by rename, and an nftables set.

Both are all-or-nothing, so a firewall never reads half a list: a file is written next to its
final name, fsynced and renamed over it; the nft set is flushed and refilled in one ``nft -f``
transaction (the kernel applies the whole script or none of it), so a connection to an address
that stays in the list never meets a moment without it.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline.publish.rule import TargetList

FAMILY_FILES = {None: "txt", 4: "v4.txt", 6: "v6.txt"}


def body(cidrs: Iterable[str]) -> bytes:
    """One address or CIDR per line, the form firewall list fetchers read (no comments: some
    refuse them; the evidence travels in HTTP headers and ``/lists.json`` instead)."""
    return "".join(f"{c}\n" for c in cidrs).encode()


def write_atomically(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` by rename; False (untouched) when it already holds it."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return True


def write_files(directory: Path, lists: Mapping[str, TargetList]) -> list[Path]:
    """``<target>.txt`` (both families), ``<target>.v4.txt`` and ``<target>.v6.txt``."""
    changed = []
    for target, tl in lists.items():
        for family, suffix in FAMILY_FILES.items():
            path = directory / f"{target}.{suffix}"
            if write_atomically(path, body(tl.cidrs(family))):
                changed.append(path)
    return changed


def nft_script(table: str, set_name: str, lists: Iterable[TargetList]) -> str:
    """Create-if-missing, flush and refill ``inet <table>`` sets ``<set>4`` / ``<set>6`` with the
    union of the lists, as one transaction. Overlapping entries are merged first: an interval
    set refuses overlaps."""
    nets: dict[int, list] = {4: [], 6: []}
    for tl in lists:
        for cidr in tl.cidrs():
            net = ipaddress.ip_network(cidr)
            nets[net.version].append(net)
    lines = [f"add table inet {table}"]
    for fam in (4, 6):
        name = f"{set_name}{fam}"
        lines.append(f"add set inet {table} {name} {{ type ipv{fam}_addr; flags interval; }}")
        lines.append(f"flush set inet {table} {name}")
        merged = list(ipaddress.collapse_addresses(nets[fam]))
        if merged:
            lines.append(f"add element inet {table} {name} {{ "
                         + ", ".join(str(n) for n in merged) + " }")
    return "\n".join(lines) + "\n"


class NftError(RuntimeError):
    """``nft -f`` refused the script; the set keeps its previous contents."""


def apply_nft(command: str, script: str, timeout: float = 10.0) -> None:
    try:
        proc = subprocess.run([command, "-f", "-"], input=script, capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NftError(f"{command} -f could not run: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["(no message)"])[0]
        raise NftError(f"{command} -f refused the update (exit {proc.returncode}): {detail}")
