"""unbound instances: one process per lab resolver, in the foreground, nothing leaves loopback.

Safety first: `local-zone: "." refuse` answers REFUSED for every name outside the lab zones, the
lab zones are `transparent` local zones with stub-zones to the lab server, and a stub-zone for "."
also points at the lab server, so even a query that slipped through could only reach 127.O.0.1.
The outgoing interface is a per-resolver loopback address: the lab server picks the view from it.
"""

from __future__ import annotations

from lab.daemons.common import LAB_ZONES, DaemonCommand, DaemonSpec

BINARY = "/usr/sbin/unbound"
DOT_PORT = 853
DOH_PORT = 8443
DOH_PATH = "/dns-query"


def config_text(spec: DaemonSpec) -> str:
    r, p, d = spec.resolver, spec.plan, spec.workdir
    lines = [
        "server:",
        f"    interface: {p.daemon}@{p.port}",
        f"    outgoing-interface: {p.outgoing}",
        "    do-ip6: no",
        "    do-udp: yes",
        "    do-tcp: yes",
        "    do-daemonize: no",
        "    use-syslog: no",
        f'    logfile: "{d}/unbound.log"',
        "    verbosity: 1",
        '    username: ""',
        '    chroot: ""',
        f'    directory: "{d}"',
        f'    pidfile: "{d}/unbound.pid"',
        "    num-threads: 1",
        "    so-reuseport: no",
        "    outgoing-range: 64",
        "    num-queries-per-thread: 32",
        "    msg-cache-size: 4m",
        "    rrset-cache-size: 8m",
        "    key-cache-size: 1m",
        "    neg-cache-size: 1m",
        "    infra-cache-numhosts: 100",
        "    access-control: 127.0.0.0/8 allow",
        "    do-not-query-localhost: no",
        '    module-config: "iterator"',
        "    # a single upstream that never really fails: never mark it dead for long",
        "    infra-host-ttl: 1",
        "    infra-keep-probing: yes",
        "    harden-referral-path: no",
        "    qname-minimisation: yes",
        '    local-zone: "." refuse',
    ]
    if spec.dot_cert is not None and spec.dot_key is not None:
        # DNS over TLS and over HTTPS beside plain DNS, on the daemon's own address (a fault
        # shim, where there is one, relays plain UDP only).
        lines += [f"    interface: {p.daemon}@{DOT_PORT}", f"    tls-port: {DOT_PORT}",
                  f"    interface: {p.daemon}@{DOH_PORT}", f"    https-port: {DOH_PORT}",
                  f'    http-endpoint: "{DOH_PATH}"',
                  f'    tls-service-key: "{spec.dot_key}"',
                  f'    tls-service-pem: "{spec.dot_cert}"']
    for zone in LAB_ZONES:
        lines += [f'    local-zone: "{zone}." transparent', f'    domain-insecure: "{zone}."']
    if r.cache == "off":
        lines += ["    cache-max-ttl: 0", "    cache-max-negative-ttl: 0"]
    elif r.cache == "prefetch":
        lines += ["    prefetch: yes"]
    elif r.cache == "serve-expired":
        lines += [
            "    serve-expired: yes",
            f"    serve-expired-ttl: {spec.real_seconds(r.stale_ttl)}",
            "    serve-expired-ttl-reset: no",
            "    serve-expired-client-timeout: 0",
        ]
    lines += ["remote-control:", "    control-enable: no"]
    for zone in (*LAB_ZONES, "."):
        lines += ["stub-zone:", f'    name: "{zone}"',
                  f"    stub-addr: {spec.auth}@{spec.auth_port}"]
    return "\n".join(lines) + "\n"


def command(spec: DaemonSpec) -> DaemonCommand:
    spec.workdir.mkdir(parents=True, exist_ok=True)
    conf = spec.workdir / "unbound.conf"
    conf.write_text(config_text(spec))
    return DaemonCommand(argv=[BINARY, "-d", "-c", str(conf)], config_files=[conf])
