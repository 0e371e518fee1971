#!/usr/bin/env bash
# Install what the lab needs from Debian (idempotent) and leave no packaged daemon running.
#
# The lab runs its own instances of unbound, kresd and pdns_recursor; the packages' own services
# would hold port 53 on 127.0.0.1/::1 and try to reach the real root servers, so they are kept
# from starting during installation (policy-rc.d) and stopped if they run anyway. Needs root.
set -euo pipefail

binaries=(/usr/sbin/unbound /usr/sbin/kresd /usr/sbin/pdns_recursor /usr/bin/dig /usr/bin/openssl
          /usr/bin/prometheus /usr/bin/promtool /usr/sbin/nft /usr/sbin/ipset /usr/sbin/ip
          /usr/sbin/iptables /usr/sbin/ip6tables)
missing=0
for b in "${binaries[@]}"; do
    [ -x "$b" ] || missing=1
done

if [ "$missing" = 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# edgewatch lab install: do not start services\nexit 101\n' \
            > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    apt-get update
    apt-get install -y unbound knot-resolver pdns-recursor dnsutils openssl
    # Prometheus scrapes the daemon in the metrics tests; nftables/ipset/iproute2 (and
    # iptables/ip6tables for the ipset match) enforce allowlists inside network namespaces the
    # tests create. Recommends would pull exporters.
    apt-get install -y --no-install-recommends prometheus nftables ipset iproute2 iptables
    if [ "$created_policy" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
fi

# Stop packaged daemons that got started anyway. Lab instances are recognised by their command
# line (a config under a lab run folder's resolvers/ directory) and left alone.
for name in unbound kresd pdns_recursor; do
    for pid in $(pidof "$name" 2>/dev/null || true); do
        cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)
        case "$cmd" in
            */resolvers/*) ;;
            *) echo "lab/install.sh: stopping packaged $name (pid $pid): $cmd"
               kill "$pid" 2>/dev/null || true ;;
        esac
    done
done

for b in "${binaries[@]}"; do
    [ -x "$b" ] || { echo "lab/install.sh: $b still missing" >&2; exit 1; }
done
echo "lab/install.sh: unbound, kresd, pdns_recursor, dig, openssl, prometheus, nft, ipset, iptables and ip are installed"
