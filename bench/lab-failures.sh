#!/usr/bin/env bash
# Datastore and node failures in the lab, measured: runs the suite crates/cli/tests/lab_failures.rs
# (3-node vxlan lab on a TLS etcd, lease TTL 6 s, pods probing each other with a UDP datagram
# every 50 ms the whole time) and writes its numbers — datagrams lost per scenario, time to
# converge after an outage, time to withdraw a dead node's routes — as a section of
# bench/LAB-RESULTS.md (between the lab-failures markers; the rest of the file is lab.sh's and
# is left as it is). With --baseline-twilld, the suite also runs with that twilld (e.g. one
# built from main before a fix) and both are reported side by side.
#
#   sudo bench/lab-failures.sh [--baseline-twilld PATH --baseline-label TEXT] [--out FILE]
#
# The suite makes its own labs under their own prefixes (tlabf*<pid>) and removes them; it
# never touches the host's interfaces, routes or firewall. A baseline run is expected to fail
# its assertions (that is what it is for); its numbers are reported all the same.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
COMMAND_LINE="bench/lab-failures.sh${*:+ $*}"
OUT=bench/LAB-RESULTS.md BASELINE="" BASELINE_LABEL="baseline"
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline-twilld) BASELINE=$2; shift 2 ;;
    --baseline-label) BASELINE_LABEL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "lab-failures.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "lab-failures.sh: needs root (network namespaces); run: sudo $COMMAND_LINE" >&2
  exit 1
fi
command -v jq >/dev/null || { echo "lab-failures.sh: jq is missing (scripts/install-deps.sh)" >&2; exit 1; }

WORK=$(mktemp -d "/tmp/lab-failures-$$.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log() { printf 'lab-failures.sh: %s\n' "$*" >&2; }

# run_suite LABEL [TWILLD]: the suite's JSON lines in $WORK/LABEL.jsonl, its output in .log.
run_suite() {
  local label=$1 twilld=${2:-} rc=0
  local env=(TWILL_LAB_FAILURES_REPORT="$WORK/$label.jsonl")
  if [ -n "$twilld" ]; then env+=(TWILL_LAB_TWILLD="$twilld"); fi
  log "running the suite ($label); a few minutes"
  env "${env[@]}" cargo test --locked -p twill --test lab_failures -- --nocapture --test-threads 1 \
    >"$WORK/$label.log" 2>&1 || rc=$?
  grep -E '^(test |RESULT)' "$WORK/$label.log" >&2 || true
  echo "$rc" >"$WORK/$label.rc"
}

# table LABEL: one row per scenario.
table() {
  local f=$WORK/$1.jsonl
  echo "| suite | scenario | datagrams between running pods | lost | longest loss (first to last lost), ms | blocked datagrams answered | timings, ms |"
  echo "|---|---|---|---|---|---|---|"
  jq -r 'select(.scenario) |
    [ .suite, .scenario,
      ([.pairs[] | select(.expect == "Reach") | .sent] | add | tostring),
      ([.pairs[] | select(.expect == "Reach") | .wrong] | add | tostring),
      ([.pairs[] | select(.expect == "Reach") | .loss_span_ms] | max | tostring),
      ([.pairs[] | select(.expect == "Blocked") | .wrong] | add // 0 | tostring),
      ([.ms | to_entries[] | "\(.key) \(.value)"] | join("; "))
    ] | "| " + join(" | ") + " |"' "$f"
  echo
  echo "From the agents' logs (suites where no node dies): $(jq -r 'select(.note) | "\(.suite): \(.note) \(.count)"' "$f" | paste -sd ';' | sed 's/;/; /g')."
}

verdict() {
  if [ "$(cat "$WORK/$1.rc")" = 0 ]; then echo "passed"; else echo "FAILED (see the rows)"; fi
}

write_section() {
  echo "<!-- lab-failures:begin (bench/lab-failures.sh writes this section; lab.sh keeps it) -->"
  echo "## Datastore and node failures, with pods probing each other"
  echo
  echo "Produced by \`$COMMAND_LINE\` (as root) on $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (work tree modified)'),"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(nproc) CPUs. Re-running the script replaces this section."
  echo
  echo "The suite \`crates/cli/tests/lab_failures.rs\` (debug build): 3 nodes, vxlan (host-gw in the suite so named), etcd over TLS,"
  echo "\`--lease-ttl 6\`, resync 2 s; pods x/a, x/b, x/c on nodes 1–3 and x/intruder on node 1 under a"
  echo "NetworkPolicy admitting only member=yes pods. One UDP datagram every 50 ms on each of four"
  echo "allowed cross-node pairs (a→b, b→c, c→a, b→a) and two blocked ones (intruder→b, →c); a datagram"
  echo "is lost when its answer is not back within 1.5 s. A scenario's window runs from the failure"
  echo "to 10 s (TTL + resync + 2 s) after recovery. *converge*: from thaw/restart until every node"
  echo "record is republished as ready and every pod record is there. Power-off: node-3's twilld and"
  echo "pods killed by pid, its namespaces deleted; only pairs between the surviving pods count."
  echo
  if [ -n "$BASELINE" ]; then
    echo "### $BASELINE_LABEL — suite $(verdict baseline)"
    echo
    table baseline
    echo
  fi
  echo "### this tree — suite $(verdict current)"
  echo
  table current
  echo "<!-- lab-failures:end -->"
}

if [ -n "$BASELINE" ]; then run_suite baseline "$BASELINE"; fi
run_suite current
SECTION=$WORK/section.md
write_section >"$SECTION"
if [ -f "$OUT" ] && grep -q '^<!-- lab-failures:begin' "$OUT"; then
  # Replace the old section in place.
  awk -v new="$SECTION" '
    /^<!-- lab-failures:begin/ { while ((getline l < new) > 0) print l; skip = 1; next }
    /^<!-- lab-failures:end -->/ { skip = 0; next }
    !skip { print }' "$OUT" >"$WORK/out.md"
  cat "$WORK/out.md" >"$OUT"
else
  { [ -f "$OUT" ] && cat "$OUT" && echo; cat "$SECTION"; } >"$WORK/out.md"
  cat "$WORK/out.md" >"$OUT"
fi
log "wrote $OUT"
[ "$(cat "$WORK/current.rc")" = 0 ]
