"""The checks of single values: hostnames, URLs, ports, CA files, folders.

Each returns the reason a value is refused (or raises ValueError with it), phrased for the one
line a person reads; the section parsers attach the dotted key. ``check`` reuses them for its
command-line arguments, so a value is refused with the same words wherever it is given.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

_LDH_LABEL = re.compile(r"[A-Za-z0-9-]+")


def shown(text: str, limit: int = 40) -> str:
    """``text`` quoted, shortened so that a 300-character name still gives one readable line."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def hostname_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS hostname a resolver can be asked for, or None when it is one.

    The rules of RFC 1035/1123 that dnspython enforces only once the cycle runs (labels of at most
    63 octets, names of at most 253, no empty label), plus the LDH rule (letters, digits, inner
    hyphens) and "not an address". Internationalised names are accepted as A-labels
    (``xn--bcher-kva.example``); a U-label is refused with its A-label as the hint, so what is
    stored and reported is exactly what was asked.
    """
    if not name:
        return "must not be empty: a hostname such as acme-v02.api.letsencrypt.org"
    bare = name[:-1] if name.endswith(".") else name
    try:
        ipaddress.ip_address(bare)
        return (f"{shown(name)} is an IP address; give the hostname the resolvers are asked "
                "for (and connections are verified against)")
    except ValueError:
        pass
    if not name.isascii():
        return _non_ascii_problem(name)
    if not bare:
        return "must be a hostname, not the root '.'"
    if len(bare) > 253:
        return f"{shown(name)} is {len(bare)} octets long; a DNS name has at most 253"
    labels = bare.split(".")
    why = next(filter(None, (_label_problem(name, label) for label in labels)), None)
    if why:
        return why
    if labels[-1].isdigit():
        return f"{shown(name)} ends in an all-numeric label: neither a hostname nor an address"
    return None


def _non_ascii_problem(name: str) -> str:
    """A U-label is refused with its A-label as the hint (what is stored is what was asked)."""
    try:
        alabel = name.encode("idna").decode("ascii")
    except UnicodeError:
        return f"{shown(name)} is not ASCII and not a valid internationalised name"
    return f"{shown(name)} is not ASCII: write its A-label {alabel!r}"


def _label_problem(name: str, label: str) -> str | None:
    """Why one label of ``name`` breaks RFC 1035/1123 (length, LDH, hyphens), or None."""
    if not label:
        return f"{shown(name)} has an empty label (a leading dot or two dots in a row)"
    if len(label) > 63:
        return f"{shown(name)} has a label of {len(label)} octets; a DNS label has at most 63"
    if not _LDH_LABEL.fullmatch(label):
        return (f"{shown(name)}: label {shown(label)} has characters other than letters, "
                "digits and '-'")
    if label.startswith("-") or label.endswith("-"):
        return f"{shown(name)}: label {shown(label)} starts or ends with '-'"
    return None


def http_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be the request target of one HTTP/1.1 GET line, or None."""
    if not path.startswith("/") or not re.fullmatch(r"[\x21-\x7e]+", path):
        return ("must start with / and hold printable ASCII without spaces "
                "(percent-encode the rest)")
    return None


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` is not an absolute URL of one of ``schemes`` with a host and a valid port."""
    want = " or ".join(f"{s}://" for s in schemes)
    if not url or any(c.isspace() for c in url):
        return f"must be a URL starting with {want} (no spaces)"
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        return f"must start with {want}"
    if not parts.hostname:
        return "has no host (expected e.g. " + f"{schemes[0]}://host:port)"
    try:
        port = parts.port
    except ValueError:
        raw = parts.netloc.rpartition(":")[2]
        if raw.isascii() and raw.isdigit():
            return f"port {int(raw)} is out of range 1..65535"
        return f"port {shown(raw)} is not a number in 1..65535"
    if port is not None and not 1 <= port <= 65535:
        return f"port {port} is out of range 1..65535"
    return None


def ca_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as a CA bundle (missing, unreadable, not PEM), or None.

    Loaded the way the TLS probe and the Elasticsearch client will load it, so a file that passes
    here does not fail later.
    """
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_file():
        return f"{path} is not a file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return f"{path} is not a PEM certificate (no BEGIN CERTIFICATE block)"
    import ssl  # here: most commands never load a CA file, and ssl costs start-up time

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        return f"{path} is not a usable PEM certificate bundle ({exc})"
    return None


def dir_problem(path: Path, need_write: bool) -> str | None:
    """Why ``path`` cannot be (created and) used as a directory, or None."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        where = "is" if probe == path else f"cannot be created: {probe} is"
        return f"{path} {where} a file, not a directory"
    if need_write and not os.access(probe, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        why = "on a read-only file system" if read_only else "not writable by this user"
        if probe == path:
            return f"{path} is {why}"
        return f"{path} cannot be created: {probe} is {why}"
    return None


def parse_host_port(value: str, default_port: int = 53) -> tuple[str, int]:
    """``ADDRESS``, ``ADDRESS:PORT`` or ``[IPv6]:PORT``; ValueError with the reason otherwise.

    The one parser of resolver addresses: ``[rdns] resolver`` and ``check --resolver`` both use it.
    """
    value = value.strip()
    port_s: str | None = None
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{shown(value)} is not ADDRESS[:PORT] or [IPv6]:PORT")
        port_s = rest[1:] if rest else None
    elif value.count(":") == 1:
        host, _, port_s = value.partition(":")
    else:
        host = value
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{shown(host)} is not an IP address (ADDRESS[:PORT])") from None
    port = default_port
    if port_s is not None:
        if not re.fullmatch(r"[0-9]{1,6}", port_s):
            raise ValueError(f"port {shown(port_s)} is not a number in 1..65535")
        port = int(port_s)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1..65535")
    return host, port


def source_address_problem(value: str) -> str | None:
    """Why ``value`` cannot be the address probes send from: not an IP address, or not one of
    this host's (binding it fails). Checked at start, so a typo is one line, not a cycle of
    ``dns.network`` failures."""
    import socket

    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return f"{shown(value)} is not an IP address (e.g. 127.0.0.21 or 2001:db8::5)"
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((str(ip), 0))
    except OSError as exc:
        return f"{value} is not an address of this host ({exc.strerror or exc})"
    return None
