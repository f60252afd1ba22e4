#!/usr/bin/env bash
# Builds the release binaries (twill, twill-cni, twill-cni-cluster, twill-bench) and runs every benchmark part,
# writing bench/RESULTS.md. Extra arguments go to twill-bench, e.g. `bench/run.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-release.sh -p twill --bins -p twill-bench
if [ "$(id -u)" -ne 0 ]; then
  exec sudo target/release/twill-bench all --out bench/RESULTS.md "$@"
fi
exec target/release/twill-bench all --out bench/RESULTS.md "$@"
