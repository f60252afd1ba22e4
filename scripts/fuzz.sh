#!/usr/bin/env bash
# Runs twill's coverage-guided fuzz targets (fuzz/, cargo-fuzz, nightly toolchain).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Every target (or the ones named) runs SECONDS (default 10: a smoke) starting from its seeds
# (fuzz/seeds/TARGET, read-only) and its growing corpus (fuzz/corpus/TARGET, not committed).
# Environment:
#   FUZZ_RUNS=N   stop each target after N executions instead (SECONDS is then a cap)
#   FUZZ_JOBS=N   targets run side by side (default 1)
#   FUZZ_BUILD=dev|release  dev (unoptimised, quick to build) is the default for runs of up to
#                 60 s; release (optimised, debug assertions and overflow checks kept) above
#   FUZZ_TARGET_DIR=DIR     build there instead of fuzz/target
# A crash, a timeout, an out-of-memory or a failed invariant fails the script; libFuzzer
# leaves the input in fuzz/artifacts/TARGET/ (replay: cargo +nightly fuzz run -s none TARGET FILE).
# Ends with one line per target: executions, seconds, corpus size.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/toolchain.sh
twill_find_cargo
cd fuzz
seconds=${1:-10}
shift $(( $# > 0 ? 1 : 0 ))
jobs=${FUZZ_JOBS:-1}
build=${FUZZ_BUILD:-$([ "$seconds" -le 60 ] && echo dev || echo release)}
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
all=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^twill-fuzz$')
targets=${*:-$all}
# Sanitizers add little over Rust's own checks for these safe-Rust parsers and halve the speed.
flags=(-s none)
case $build in
  dev) flags+=(--dev) ;;
  release) flags+=(--debug-assertions) ;;
  *) echo "fuzz: FUZZ_BUILD must be dev or release, not $build" >&2; exit 1 ;;
esac
[ -n "${FUZZ_TARGET_DIR:-}" ] && flags+=(--target-dir "$FUZZ_TARGET_DIR")
nice -n 10 cargo +nightly fuzz build "${flags[@]}"
# The targets run from this one build: editing the sources during a long run changes nothing.
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
bins=$(realpath "${FUZZ_TARGET_DIR:-target}")/$triple/$([ "$build" = dev ] && echo debug || echo release)
# File-backed targets work in $TMPDIR; give them one of their own, on tmpfs when there is one.
scratch_root=/dev/shm
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch_root/twill-fuzz.XXXXXX")
logs=$(mktemp -d "${TMPDIR:-/tmp}/twill-fuzz-logs.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

run_one() {
  local t=$1
  mkdir -p "corpus/$t" "artifacts/$t"
  local extra=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
  [ -n "${FUZZ_RUNS:-}" ] && extra+=(-runs="$FUZZ_RUNS")
  [ -f "dicts/$t.dict" ] && extra+=(-dict="dicts/$t.dict")
  if TMPDIR=$scratch nice -n 10 "$bins/$t" "${extra[@]}" -artifact_prefix="artifacts/$t/" \
      "corpus/$t" "seeds/$t" >"$logs/$t.log" 2>&1; then
    echo ok >"$logs/$t.status"
  else
    echo failed >"$logs/$t.status"
  fi
}

running=0
for t in $targets; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-16s %14s %8s %8s\n' target executions seconds corpus
for t in $targets; do
  log=$logs/$t.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  size=$(find "corpus/$t" -type f | wc -l)
  printf '%-16s %14s %8s %8s\n' "$t" "${runs:-?}" "${secs:-?}" "$size"
  if [ "$(cat "$logs/$t.status" 2>/dev/null)" != ok ]; then
    failed=1
    echo "fuzz: $t FAILED; last lines of $log:" >&2
    tail -25 "$log" >&2
  fi
done
[ "$failed" -eq 0 ] || exit 1
rm -rf "$logs"
