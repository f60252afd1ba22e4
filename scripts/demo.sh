#!/usr/bin/env bash
# The newcomer's first command: install what twill needs, build it, run the lab demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build-release.sh
exec target/release/twill lab demo
