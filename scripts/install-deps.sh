#!/usr/bin/env bash
# Installs every Debian 12 package twill builds, tests and benchmarks with. Idempotent.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root (apt-get)" >&2
  exit 1
fi
packages=(
  iproute2                       # ip/tc for tests and the demo's inspection output
  kmod                           # modprobe br_netfilter where it is a module (policy tests)
  nftables iptables conntrack    # iptables backend; nft/conntrack only to inspect state in tests
  strace                         # tests prove the CNI path starts no helper process
  containernetworking-plugins    # the reference Go plugins, for side-by-side tests and bench/
  iperf3                         # datapath measurements
  jq procps psmisc               # test scripts
  iputils-ping netcat-openbsd    # connectivity checks in tests
  podman runc busybox-static     # podman (CNI backend, runc; busybox rootfs) as a real runtime in tests
  containerd                     # containerd 1.6 + ctr (`ctr run --cni`) as a real runtime in tests
  etcd-server                    # the etcd datastore (agent tests, `twill lab up --datastore etcd`)
  protobuf-compiler libprotobuf-dev  # protoc and its well-known .proto files, for etcd-client's gRPC code
  bird2                          # BIRD 2 (bird, birdc): the bgp backend's BGP speaker, the lab's router
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
# twill runs its own BIRDs, each inside a lab or test namespace with its files in the lab's
# state dir; the package's system-wide service (host namespace, /etc/bird) is not wanted.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet bird.service 2>/dev/null; then
  systemctl disable --now bird.service
fi
. "$(dirname "$0")/toolchain.sh"
twill_find_cargo || exit 1
