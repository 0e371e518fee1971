#!/usr/bin/env bash
# The main job, end to end on this machine: bring up the lab (a simulated CDN-fronted ACME API
# with real resolvers and TLS edges), probe it with edgewatch for DEMO_DAYS scenario days on an
# accelerated clock, print the run summary and the allowlist report, and tear everything down.
#
# With no cluster configured the documents go to the local ndjson store (var/demo/data). With
# ES_URL set they are indexed into that cluster (after `edgewatch setup`) and the report reads it.
#
#   DEMO_SCENARIO=study-14d  DEMO_DAYS=14  DEMO_SPEED=1800  bash scripts/demo.sh   (defaults: 7 days)
#
# --dualstack: the dual-stack lab instead (scenario `dualstack`, 2 days by default): IPv4 and
# IPv6 edges inside a network namespace the lab creates and removes; edgewatch runs inside it
# (`edgewatch-lab exec`), writes the ndjson store (loaded into ES_URL afterwards, if set: the
# cluster is outside the namespace), and the report is shown together and per family. Needs root.
#
#   bash scripts/demo.sh --dualstack
set -euo pipefail
cd "$(dirname "$0")/.."

DUALSTACK=0
if [ "${1:-}" = "--dualstack" ]; then
    DUALSTACK=1
elif [ -n "${1:-}" ]; then
    echo "scripts/demo.sh: unknown argument $1 (usage: bash scripts/demo.sh [--dualstack])" >&2
    exit 2
fi
if [ "$DUALSTACK" = 1 ]; then
    SCENARIO="${DEMO_SCENARIO:-dualstack}"
    DAYS="${DEMO_DAYS:-2}"
else
    SCENARIO="${DEMO_SCENARIO:-study-14d}"
    DAYS="${DEMO_DAYS:-7}"
fi
SPEED="${DEMO_SPEED:-1800}"
OUT="${DEMO_DIR:-var/demo}"

bash scripts/bootstrap.sh
EW=.venv/bin/edgewatch
LAB=.venv/bin/edgewatch-lab

rm -rf "$OUT"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cleanup() { "$LAB" down --run-dir "$OUT/lab" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

echo "== lab: scenario $SCENARIO at ${SPEED}x (one scenario hour in $((3600 / SPEED))s or less)"
"$LAB" up --scenario "$SCENARIO" --speed "$SPEED" --run-dir "$OUT/lab" --quiet >/dev/null
CONFIG="$OUT/lab/edgewatch.toml"

# Real seconds are scarce on an accelerated clock: a 15-minute cadence is 0.5 s at 1800x, so
# the loopback timeouts are cut to fit a cycle inside it.
export EDGEWATCH_STORE__DIR="\"$OUT/data\"" EDGEWATCH_STATE__DIR="\"$OUT/state\""
export EDGEWATCH_TIMEOUTS__DNS="${DEMO_DNS_TIMEOUT:-0.3}" EDGEWATCH_TIMEOUTS__CONNECT=0.2
export EDGEWATCH_TIMEOUTS__TLS=0.3 EDGEWATCH_TIMEOUTS__HTTP=0.3

if [ -n "${ES_URL:-}" ]; then
    echo "== elasticsearch at $ES_URL: installing templates"
    "$EW" setup --config "$CONFIG"
fi

CYCLES=$((DAYS * 96))
echo "== edgewatch run: $CYCLES cycles (every 15 scenario minutes for $DAYS days)"
if [ "$DUALSTACK" = 1 ]; then
    echo "== inside the lab's network namespace: $LAB exec --run-dir $OUT/lab -- edgewatch run ..."
    "$LAB" exec --run-dir "$OUT/lab" -- env -u ES_URL "$EW" run --config "$CONFIG" --cycles "$CYCLES"
    if [ -n "${ES_URL:-}" ]; then
        echo "== edgewatch load: the store into $ES_URL"
        "$EW" load --config "$CONFIG" --store "$OUT/data"
    fi
else
    "$EW" run --config "$CONFIG" --cycles "$CYCLES"
fi

echo
echo "== ground truth of the lab for comparison: edgewatch-lab truth --scenario $SCENARIO"
echo "== edgewatch report"
"$EW" report --config "$CONFIG" --format html -o "$OUT/report.html" --no-progress
"$EW" allowlist --config "$CONFIG" --coverage 0.99 --by prefix24 --format cidr -o "$OUT/allowlist.txt" --no-progress
"$EW" report --config "$CONFIG" --no-progress
if [ "$DUALSTACK" = 1 ]; then
    for fam in 4 6; do
        "$EW" report --config "$CONFIG" --family "$fam" --no-progress > "$OUT/report-ipv$fam.txt"
        echo
        echo "== edgewatch report --family $fam (full text: $OUT/report-ipv$fam.txt)"
        awk '/^Failures by kind/ { exit } { print }' "$OUT/report-ipv$fam.txt"
    done
fi
echo
echo "HTML report: $OUT/report.html   allowlist (99%, by /24): $OUT/allowlist.txt"
