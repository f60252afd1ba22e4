#!/usr/bin/env bash
# The lab part of bench/: pod-to-pod throughput (iperf3, 1 and 4 streams) and ping RTT on one
# node and across nodes, per backend (host-gw, vxlan, bgp; file datastore), the time from
# `twill lab pod add` to the first successful `twill lab probe` to that pod, and route
# convergence when a node joins (its twilld started again after it left). A bare veth pair
# between two plain namespaces is measured in the same rounds as the floor. Writes a Markdown
# report (default bench/LAB-RESULTS.md) with the exact command that produced it.
#
#   sudo bench/lab.sh [--nodes 2|3] [--rounds N] [--reps N] [--conv-reps N] [--secs S]
#                     [--backends "host-gw vxlan bgp"] [--no-build] [--out FILE]
#
# Everything runs inside namespaces this script creates: a lab under its own prefix
# (TWILL_LAB_PREFIX=lb<pid>, so other labs and tests are never touched) and the floor's
# namespaces lbf<pid>-*. The host's interfaces, routes and firewall are never touched. The
# servers it starts (iperf3, `twill lab serve` for the floor) are killed by their pid, after
# checking the pid still lives in the namespace it was started in. The EXIT trap always runs
# `twill lab down` for the prefix and removes the floor namespaces.
set -euo pipefail
export LC_ALL=C   # EPOCHREALTIME and printf with a '.' decimal separator

cd "$(dirname "$0")/.."
COMMAND_LINE="bench/lab.sh${*:+ $*}"

NODES=2 ROUNDS=5 REPS=10 CONV_REPS=5 SECS=3 BACKENDS="host-gw vxlan bgp" BUILD=1 OUT=bench/LAB-RESULTS.md
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --conv-reps) CONV_REPS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --backends) BACKENDS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "lab.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$NODES" in 2|3) ;; *) echo "lab.sh: --nodes must be 2 or 3" >&2; exit 2 ;; esac

if [ "$(id -u)" -ne 0 ]; then
  echo "lab.sh: needs root (network namespaces); run: sudo $COMMAND_LINE" >&2
  exit 1
fi
for tool in iperf3 ping jq ip awk; do
  command -v "$tool" >/dev/null || { echo "lab.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
case " $BACKENDS " in
  *" bgp "*) command -v bird >/dev/null || { echo "lab.sh: bird is missing for --backends bgp (scripts/install-deps.sh)" >&2; exit 1; } ;;
esac

TWILL=$PWD/target/release/twill
export TWILL_LAB_PREFIX="lb$$"
FLOOR="lbf$$"                    # floor namespaces: $FLOOR-a (client), $FLOOR-b, $FLOOR-p
WORK=$(mktemp -d "/tmp/lab-bench-$$.XXXXXX")
SAMPLES=$WORK/samples            # lines: KEY VALUE
NOTES=$WORK/notes                # lines of text for the report
PIDS=$WORK/pids                  # lines: PID NETNS (servers this script started)
: >"$SAMPLES"; : >"$NOTES"; : >"$PIDS"
LAB_NS=bench                     # the Kubernetes-style namespace of every bench pod
SERVER_PIN=() CLIENT_PIN=()      # iperf3 CPU affinity, see iperf_server_start
if [ "$(nproc)" -ge 2 ]; then SERVER_PIN=(-A 1) CLIENT_PIN=(-A 0); fi

log() { printf 'lab.sh: %s\n' "$*" >&2; }
note() { printf '%s\n' "$*" >>"$NOTES"; log "note: $*"; }
sample() { printf '%s %s\n' "$1" "$2" >>"$SAMPLES"; }
now_us() { local t=${EPOCHREALTIME/./}; printf '%s' "$((10#$t))"; }
ms_since() { awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }

# --- processes this script started, killed by pid only while still in their namespace ----

remember_pid() { printf '%s %s\n' "$1" "$2" >>"$PIDS"; }

kill_remembered() {
  local pid ns killed=()
  while read -r pid ns; do
    [ -n "$pid" ] || continue
    if [ "$(ip netns identify "$pid" 2>/dev/null)" = "$ns" ]; then
      kill "$pid" 2>/dev/null && killed+=("$pid")
    fi
  done <"$PIDS"
  : >"$PIDS"
  for pid in "${killed[@]}"; do wait_gone "$pid"; done
}

# Up to 2 s for PID to exit (a zombie child counts as gone; its parent reaps it).
wait_gone() {
  local i
  for i in $(seq 100); do
    grep -qs '^State:[[:space:]]*[^Z]' "/proc/$1/status" || return 0
    sleep 0.02
  done
  log "pid $1 still running 2 s after SIGTERM"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  kill_remembered
  "$TWILL" lab down >&2 || log "twill lab down for $TWILL_LAB_PREFIX failed (rc $?)"
  local ns
  for ns in a b p; do
    ip netns del "$FLOOR-$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the floor: a bare veth pair between plain namespaces ---------------------------------

floor_up() {
  ip netns add "$FLOOR-a"
  ip netns add "$FLOOR-b"
  ip -n "$FLOOR-a" link set lo up
  ip -n "$FLOOR-b" link set lo up
  ip -n "$FLOOR-a" link add veth0 type veth peer name veth0 netns "$FLOOR-b"
  ip -n "$FLOOR-a" addr add 10.254.0.1/24 dev veth0
  ip -n "$FLOOR-b" addr add 10.254.0.2/24 dev veth0
  ip -n "$FLOOR-a" link set veth0 up
  ip -n "$FLOOR-b" link set veth0 up
}

# Runs CMD in a place: a lab place (NS/POD, node-N) or floor:X for the floor namespace X.
run_in() {
  local place=$1; shift
  case "$place" in
    floor:*) ip netns exec "$FLOOR-${place#floor:}" "$@" ;;
    *) "$TWILL" lab exec "$place" -- "$@" ;;
  esac
}

netns_of() {
  case "$1" in
    floor:*) printf '%s' "$FLOOR-${1#floor:}" ;;
    *) "$TWILL" lab status --json | jq -r --arg p "$1" '.pods[] | select(.pod == $p) | .netns' ;;
  esac
}

# Other heavy work on the machine skews every number here; say what was running.
note_machine_load() {
  local others
  others=$(ps -eo comm= | { grep -E '^(rustc|cargo|clippy-driver|rust-lld|iperf3|twill-bench)$' || true; } |
    sort | uniq -c |
    awk '{ printf "%s%s×%s", sep, $1, $2; sep = ", " }')
  note "$1: load average $(cut -d' ' -f1-3 /proc/loadavg); other heavy processes: ${others:-none}"
}

pod_ip() { "$TWILL" lab status --json | jq -r --arg p "$1" '.pods[] | select(.pod == $p) | .ips[0]'; }

# --- iperf3 and ping ------------------------------------------------------------------------

# Starts an iperf3 server bound to IP in PLACE and waits until it listens. Server on CPU 1,
# client on CPU 0 (as twill-bench's datapath part does): on a 2-core machine that keeps the
# scheduler from stacking both on one core in some runs and not in others.
iperf_server_start() {
  local place=$1 ip=$2 pidfile
  pidfile=$WORK/iperf-$(printf '%s' "$place" | tr '/:' '__').pid
  run_in "$place" iperf3 -s -D "${SERVER_PIN[@]}" -B "$ip" --pidfile "$pidfile" >/dev/null
  local i
  for i in $(seq 100); do
    [ -s "$pidfile" ] && break
    sleep 0.02
  done
  [ -s "$pidfile" ] || { log "iperf3 server in $place wrote no pidfile"; return 1; }
  remember_pid "$(tr -d '\0\n' <"$pidfile")" "$(netns_of "$place")"
  for i in $(seq 100); do
    run_in "$place" ss -Hltn "sport = :5201" | grep -q . && return 0
    sleep 0.02
  done
  log "iperf3 server in $place does not listen"
  return 1
}

# One iperf3 run from PLACE to IP with N streams; records Gbit/s and retransmits under KEY.
iperf_run() {
  local key=$1 place=$2 ip=$3 streams=$4 json
  if ! json=$(run_in "$place" iperf3 -c "$ip" "${CLIENT_PIN[@]}" -t "$SECS" -O 1 -P "$streams" -J --connect-timeout 2000); then
    note "iperf3 $key failed: $(jq -r '.error // "no JSON"' <<<"$json" 2>/dev/null || echo '?')"
    return 0
  fi
  sample "$key.gbps" "$(jq -r '.end.sum_received.bits_per_second / 1e9' <<<"$json")"
  sample "$key.retr" "$(jq -r '.end.sum_sent.retransmits // 0' <<<"$json")"
}

# 20 pings (after one unrecorded for neighbour resolution); records every RTT under KEY.rtt.
ping_run() {
  local key=$1 place=$2 ip=$3 out
  run_in "$place" ping -c 1 -W 1 "$ip" >/dev/null || true
  if ! out=$(run_in "$place" ping -c 20 -i 0.05 -W 1 "$ip"); then
    note "ping $key: $(tail -2 <<<"$out" | head -1)"
  fi
  grep -o 'time=[0-9.]*' <<<"$out" | cut -d= -f2 | while read -r t; do sample "$key.rtt" "$t"; done
}

path_round() {
  local key=$1 place=$2 ip=$3
  iperf_run "$key.s1" "$place" "$ip" 1
  iperf_run "$key.s4" "$place" "$ip" 4
  ping_run "$key" "$place" "$ip"
}

# --- time from pod add to first successful probe --------------------------------------------

# Adds pod NAME on NODE, probes it from PROBER until connected; records add, total, attempts.
provision_once() {
  local key=$1 name=$2 node=$3 prober=$4 t0 add_ms attempts=0
  t0=$(now_us)
  "$TWILL" lab pod add "$LAB_NS/$name" --node "$node" >/dev/null
  add_ms=$(ms_since "$t0")
  until "$TWILL" lab probe "$prober" "$LAB_NS/$name" --port 80 >/dev/null; do
    attempts=$((attempts + 1))
    [ "$attempts" -lt 200 ] || { note "$key: $name never answered a probe"; return 0; }
  done
  sample "$key.ready" "$(ms_since "$t0")"
  sample "$key.add" "$add_ms"
  sample "$key.failed_probes" "$attempts"
  t0=$(now_us)
  "$TWILL" lab pod del "$LAB_NS/$name" >/dev/null
  sample "$key.del" "$(ms_since "$t0")"
}

# The floor of the same: namespace + veth + addresses + up with ip(8), the same server the
# lab's pods run, then connect from the floor's client namespace until it answers.
floor_provision_once() {
  local key=floor.prov t0 add_ms attempts=0 pid
  t0=$(now_us)
  ip netns add "$FLOOR-p"
  ip -n "$FLOOR-a" link add vethp type veth peer name eth0 netns "$FLOOR-p"
  ip -n "$FLOOR-a" addr add 10.254.1.1/24 dev vethp
  ip -n "$FLOOR-a" link set vethp up
  ip -n "$FLOOR-p" addr add 10.254.1.2/24 dev eth0
  ip -n "$FLOOR-p" link set eth0 up
  ip -n "$FLOOR-p" link set lo up
  ip netns exec "$FLOOR-p" "$TWILL" lab serve --who floor/p >/dev/null 2>&1 &
  pid=$!
  remember_pid "$pid" "$FLOOR-p"
  add_ms=$(ms_since "$t0")
  until ip netns exec "$FLOOR-a" timeout 1 bash -c 'exec 3<>/dev/tcp/10.254.1.2/80' 2>/dev/null; do
    attempts=$((attempts + 1))
    [ "$attempts" -lt 200 ] || { note "$key: the floor's server never answered"; break; }
  done
  sample "$key.ready" "$(ms_since "$t0")"
  sample "$key.add" "$add_ms"
  sample "$key.failed_probes" "$attempts"
  t0=$(now_us)
  kill_remembered
  wait "$pid" 2>/dev/null || true
  # Deleting the namespace would leave the veth to be removed asynchronously, and the next
  # repetition's `link add vethp` could find it still there.
  ip -n "$FLOOR-a" link del vethp
  ip netns del "$FLOOR-p"
  sample "$key.del" "$(ms_since "$t0")"
}

# --- route convergence when a node joins ------------------------------------------------------

# ms from T0 until `ip route show NET` on node-1 answers non-empty (WANT=1) or empty (WANT=0),
# polled every 10 ms; '-' after 30 s.
route_wait() {
  local t0=$1 net=$2 want=$3 i out
  for i in $(seq 3000); do
    out=$("$TWILL" lab exec node-1 -- ip route show "$net")
    if { [ "$want" = 1 ] && [ -n "$out" ]; } || { [ "$want" = 0 ] && [ -z "$out" ]; }; then
      ms_since "$t0"
      return 0
    fi
    sleep 0.01
  done
  printf -- '-'
}

# Node NODE (pod c's) leaves (`lab agent stop`: its twilld leaves the cluster) and joins again
# (`lab agent start`, which returns once its twilld is ready). Records: how long until node-1
# dropped the route to c's subnet after the stop; the start itself; from the start until
# node-1 has the route again; and until pod a on node-1 first connects to pod c.
converge_once() {
  local key=$1 node=$2 net=$3 ip_c=$4 t0 ms attempts=0
  t0=$(now_us)
  "$TWILL" lab agent stop --node "$node" >/dev/null
  ms=$(route_wait "$t0" "$net" 0)
  [ "$ms" = - ] && { note "$key: node-1 kept the route to $net 30 s after node-$node left"; return 0; }
  sample "$key.leave" "$ms"
  t0=$(now_us)
  "$TWILL" lab agent start --node "$node" >/dev/null
  sample "$key.start" "$(ms_since "$t0")"
  ms=$(route_wait "$t0" "$net" 1)
  [ "$ms" = - ] && { note "$key: node-1 had no route to $net 30 s after node-$node joined"; return 0; }
  sample "$key.route" "$ms"
  until "$TWILL" lab probe "$LAB_NS/a" "$ip_c" --port 80 >/dev/null; do
    attempts=$((attempts + 1))
    [ "$attempts" -lt 100 ] || { note "$key: pod c never answered after node-$node joined"; return 0; }
  done
  sample "$key.probe" "$(ms_since "$t0")"
}

# --- one backend ------------------------------------------------------------------------------

# Through netlink: `lab exec` enters only the network namespace, so /sys would still show the
# host's interfaces.
pod_mtu() { run_in "$1" ip -o link show eth0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }

backend_run() {
  local backend=$1 b t0 cross_node=$NODES
  b=${backend//-/}
  log "backend $backend: lab up --nodes $NODES"
  t0=$(now_us)
  "$TWILL" lab up --nodes "$NODES" --backend "$backend" --datastore file >&2
  sample "$b.labup" "$(ms_since "$t0")"
  "$TWILL" lab pod add "$LAB_NS/a" --node 1 >&2
  "$TWILL" lab pod add "$LAB_NS/b" --node 1 >&2
  "$TWILL" lab pod add "$LAB_NS/c" --node "$cross_node" >&2
  local ip_b ip_c
  ip_b=$(pod_ip "$LAB_NS/b")
  ip_c=$(pod_ip "$LAB_NS/c")
  note "$backend: pod MTU $(pod_mtu "$LAB_NS/a") on node-1, $(pod_mtu "$LAB_NS/c") on node-$cross_node"
  note_machine_load "$backend, before the datapath rounds"
  iperf_server_start "$LAB_NS/b" "$ip_b"
  iperf_server_start "$LAB_NS/c" "$ip_c"
  iperf_server_start floor:b 10.254.0.2
  local r
  for r in $(seq "$ROUNDS"); do
    log "backend $backend: throughput/RTT round $r/$ROUNDS"
    path_round "$b.same" "$LAB_NS/a" "$ip_b"
    path_round "$b.cross" "$LAB_NS/a" "$ip_c"
    path_round floor floor:a 10.254.0.2
  done
  kill_remembered
  note_machine_load "$backend, before pod add -> probe"
  for r in $(seq "$REPS"); do
    log "backend $backend: pod add -> first probe, rep $r/$REPS"
    provision_once "$b.prov.same" "s$r" 1 "$LAB_NS/a"
    provision_once "$b.prov.cross" "x$r" "$cross_node" "$LAB_NS/a"
    floor_provision_once
  done
  note_machine_load "$backend, before node leave/join"
  local net_c
  net_c=$("$TWILL" lab status --json | jq -r --arg n "node-$cross_node" '.nodes[] | select(.name == $n) | .subnets[0]')
  for r in $(seq "$CONV_REPS"); do
    log "backend $backend: node-$cross_node leaves and joins, rep $r/$CONV_REPS"
    converge_once "$b.conv" "$cross_node" "$net_c" "$ip_c"
  done
  "$TWILL" lab down >&2
}

# --- the report -------------------------------------------------------------------------------

# stat_of KEY WHAT: WHAT is median, p90, mean, mdev, min, max or n over KEY's samples ('-' if none).
stat_of() {
  awk -v key="$1" -v what="$2" '
    $1 == key { v[n++] = $2 + 0; s += $2; ss += $2 * $2 }
    END {
      if (n == 0) { print "-"; exit }
      for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      if (what == "n") { print n; exit }
      if (what == "min") r = v[0]
      else if (what == "max") r = v[n - 1]
      else if (what == "median") r = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
      else if (what == "p90") { k = int(0.9 * n + 0.999999); r = v[k - 1] }
      else if (what == "mean") r = s / n
      else if (what == "mdev") { m = s / n; d = ss / n - m * m; r = sqrt(d > 0 ? d : 0) }
      if (r >= 100 || r <= -100) printf "%.0f\n", r; else if (r >= 10 || r <= -10) printf "%.1f\n", r; else printf "%.3g\n", r
    }' "$SAMPLES"
}

# ratio A B: A/B with two decimals, '-' when either is missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'; }

gbps_cell() {
  local k=$1
  [ "$(stat_of "$k.gbps" n)" = "-" ] && { printf -- '-'; return; }
  printf '%s (%s–%s)' "$(stat_of "$k.gbps" median)" "$(stat_of "$k.gbps" min)" "$(stat_of "$k.gbps" max)"
}

datapath_row() {
  local label=$1 k=$2
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
    "$(gbps_cell "$k.s1")" "$(gbps_cell "$k.s4")" \
    "$(stat_of "$k.s1.retr" max)/$(stat_of "$k.s4.retr" max)" \
    "$(stat_of "$k.rtt" mean)" "$(stat_of "$k.rtt" mdev)" \
    "$(ratio "$(stat_of "$k.s1.gbps" median)" "$(stat_of floor.s1.gbps median)")" \
    "$(ratio "$(stat_of "$k.s4.gbps" median)" "$(stat_of floor.s4.gbps median)")" \
    "$(ratio "$(stat_of "$k.rtt" mean)" "$(stat_of floor.rtt mean)")"
}

cross_same_row() {
  local backend=$1 b=${1//-/}
  printf '| %s | %s | %s | %s |\n' "$backend" \
    "$(ratio "$(stat_of "$b.cross.s1.gbps" median)" "$(stat_of "$b.same.s1.gbps" median)")" \
    "$(ratio "$(stat_of "$b.cross.s4.gbps" median)" "$(stat_of "$b.same.s4.gbps" median)")" \
    "$(ratio "$(stat_of "$b.cross.rtt" mean)" "$(stat_of "$b.same.rtt" mean)")"
}

convergence_row() {
  local backend=$1 k=${1//-/}.conv
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$backend" "$(stat_of "$k.probe" n)" \
    "$(stat_of "$k.leave" median)" "$(stat_of "$k.start" median)" \
    "$(stat_of "$k.route" median)" "$(stat_of "$k.route" max)" \
    "$(stat_of "$k.probe" median)" "$(stat_of "$k.probe" max)"
}

provision_row() {
  local label=$1 k=$2
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(stat_of "$k.ready" n)" \
    "$(stat_of "$k.add" median)" "$(stat_of "$k.add" p90)" \
    "$(stat_of "$k.ready" median)" "$(stat_of "$k.ready" p90)" \
    "$(stat_of "$k.failed_probes" max)" "$(stat_of "$k.del" median)"
}

write_report() {
  local backend b
  {
    echo "# twill lab: datapath and pod readiness per backend"
    echo
    echo "Produced by \`$COMMAND_LINE\` (as root) on $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (work tree modified)')."
    echo "Re-running the script replaces this file."
    echo
    echo "| machine | |"
    echo "|---|---|"
    echo "| CPU | $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), nproc $(nproc) |"
    echo "| kernel | $(uname -r) |"
    echo "| OS | $(. /etc/os-release && echo "$PRETTY_NAME") |"
    echo "| iperf3 | $(iperf3 --version | head -1) |"
    echo "| load average | start $LOAD_START · end $(cut -d' ' -f1-3 /proc/loadavg) |"
    echo
    echo "Lab: \`twill lab up --nodes $NODES --backend B --datastore file\`, pods $LAB_NS/a and $LAB_NS/b on"
    echo "node-1, $LAB_NS/c on node-$NODES. *Same node* is a → b, *cross node* a → c. The floor is a bare"
    echo "veth pair between two plain namespaces (no bridge, no routing, no nftables), measured in the"
    echo "same rounds as every backend (so it has twice as many samples). iperf3 TCP, ${SECS} s per run after"
    local pin='server pinned to CPU 1 and client to CPU 0 (`-A`)'
    [ "${#SERVER_PIN[@]}" -gt 0 ] || pin='not pinned (one CPU)'
    echo "1 s omitted (\`-O 1\`), $pin, $ROUNDS rounds per path"
    echo "interleaved (same, cross, floor; 1 then 4 streams);"
    echo "ping: 20 × \`ping -i 0.05\` per round after one unrecorded ping (neighbour resolution)."
    echo
    echo "## Throughput and RTT"
    echo
    echo "Gbit/s: median (min–max) over the rounds. RTT: mean and mdev (standard deviation) over all"
    echo "pings of all rounds, ms. *vs floor*: path / floor (above 1 for RTT, below 1 for Gbit/s: slower)."
    echo
    echo "| path | 1 stream Gbit/s | 4 streams Gbit/s | max retransmits 1/4 | RTT avg ms | RTT mdev ms | 1 stream vs floor | 4 streams vs floor | RTT vs floor |"
    echo "|---|---|---|---|---|---|---|---|---|"
    datapath_row "veth floor" floor
    for backend in $BACKENDS; do
      b=${backend//-/}
      datapath_row "$backend same node" "$b.same"
      datapath_row "$backend cross node" "$b.cross"
    done
    echo
    echo "Cross node / same node (medians; RTT means):"
    echo
    echo "| backend | 1 stream | 4 streams | RTT |"
    echo "|---|---|---|---|"
    for backend in $BACKENDS; do cross_same_row "$backend"; done
    echo
    echo "## From \`twill lab pod add\` to the first successful probe"
    echo
    echo "ms, $REPS repetitions per row, interleaved. The clock starts before \`twill lab pod add\`"
    echo "(netns, CNI ADD through the runtime side, the pod's server, until the server answers"
    echo "itself, datastore record) and stops when \`twill lab probe $LAB_NS/a POD --port 80\` from pod a"
    echo "on node-1 first connects; *failed probes* counts probes before that. Each pod is deleted"
    echo "(\`pod del\`, also timed) before the next. The floor row does the same by hand: \`ip netns add\`,"
    echo "veth, addresses, up (seven \`ip\` execs), \`twill lab serve\` started in it, then"
    echo "\`bash /dev/tcp\` connects from the floor's client namespace until port 80 answers; its"
    echo "*pod add* is the plumbing plus starting the server (not waiting for it)."
    echo
    echo "| target | n | pod add median | pod add p90 | to first probe median | to first probe p90 | max failed probes | pod del median |"
    echo "|---|---|---|---|---|---|---|---|"
    for backend in $BACKENDS; do
      b=${backend//-/}
      provision_row "$backend, same node as prober" "$b.prov.same"
      provision_row "$backend, other node" "$b.prov.cross"
    done
    provision_row "floor (ip + server)" floor.prov
    echo
    echo "\`twill lab up --nodes $NODES\` (one run each):$(for backend in $BACKENDS; do printf ' %s %s ms;' "$backend" "$(stat_of "${backend//-/}.labup" median)"; done)"
    echo
    echo "## Route convergence when a node joins"
    echo
    echo "ms, $CONV_REPS repetitions per backend. node-$NODES (pod c's) leaves with \`twill lab agent stop\`"
    echo "(SIGTERM: its twilld leaves the cluster; with bgp its BIRD closes its sessions) and joins"
    echo "again with \`twill lab agent start\` (returns once the twilld is ready). *leave*: from the stop"
    echo "until node-1 has no route to c's subnet. *start*: the start command. *route*: from the start"
    echo "until node-1 has the route again (\`ip route show SUBNET\` polled every 10 ms). *probe*: from"
    echo "the start until pod a on node-1 first connects to pod c."
    echo
    echo "| backend | n | leave median | start median | route median | route max | probe median | probe max |"
    echo "|---|---|---|---|---|---|---|---|"
    for backend in $BACKENDS; do convergence_row "$backend"; done
    echo
    echo "## Notes from the run"
    echo
    if [ -s "$NOTES" ]; then sed 's/^/- /' "$NOTES"; else echo "- none"; fi
    echo
    echo "<details><summary>raw samples (KEY VALUE; gbps, retr, rtt ms, ms)</summary>"
    echo
    echo '```'
    cat "$SAMPLES"
    echo '```'
    echo
    echo "</details>"
    # bench/lab-failures.sh's section is its own: carried over as it is.
    if [ -n "$KEPT" ]; then printf '\n%s\n' "$KEPT"; fi
  } >"$OUT"
}

# --- main -------------------------------------------------------------------------------------

if [ "$BUILD" = 1 ]; then
  log "building release binaries"
  scripts/build-release.sh --bins -p twill -p twill-agent >&2
fi
[ -x "$TWILL" ] || { echo "lab.sh: $TWILL is missing (drop --no-build)" >&2; exit 1; }
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
floor_up
for backend in $BACKENDS; do
  backend_run "$backend"
done
KEPT=$(sed -n '/^<!-- lab-failures:begin/,/^<!-- lab-failures:end -->$/p' "$OUT" 2>/dev/null || true)
write_report
log "wrote $OUT"
