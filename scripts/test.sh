#!/usr/bin/env bash
# Runs every test, including the ones that need root and network namespaces. Those fail
# loudly (never skip) when they cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "test: the kernel-tier tests create network namespaces and need root; run as root (sudo scripts/test.sh)" >&2
  exit 1
fi
scripts/install-deps.sh
. scripts/toolchain.sh
twill_find_cargo
cargo build --workspace --locked --bins
cargo test --workspace --locked
