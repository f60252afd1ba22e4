#!/usr/bin/env bash
# Installs every Debian 12 package twill builds, tests and benchmarks with. Idempotent.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root (apt-get)" >&2
  exit 1
fi
packages=(
  iproute2                       # ip/tc for tests and the demo's inspection output
  nftables iptables conntrack    # firewall backends and their inspection
  containernetworking-plugins    # the reference Go plugins, for side-by-side tests and bench/
  iperf3                         # datapath measurements
  jq procps psmisc               # test scripts
  iputils-ping netcat-openbsd    # connectivity checks in tests
  podman runc busybox-static     # podman (CNI backend, runc; busybox rootfs) as a real runtime in tests
  containerd                     # containerd 1.6 + ctr (`ctr run --cni`) as a real runtime in tests
  etcd-server                    # the etcd datastore (agent tests, `twill lab up --datastore etcd`)
  protobuf-compiler libprotobuf-dev  # protoc and its well-known .proto files, for etcd-client's gRPC code
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
. "$(dirname "$0")/toolchain.sh"
twill_find_cargo || exit 1
