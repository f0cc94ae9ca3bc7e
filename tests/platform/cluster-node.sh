#!/bin/sh
# Runs inside each test-cluster VM (scripts/test-cluster) after every boot:
# puts the node on the private link at the address the host chose, mounts
# the checkout, waits for Docker, and loads the service and test images if
# they are missing (they survive a reboot on the node's disk).
set -eu
share=/mnt/host
repo=$(cat "$share/repo-path")
address=$(cat "$share/address")
export HOME=/root PATH="$share/bin:$PATH"

# The card the host gave this node (its MAC is in the share).
mac=$(cat "$share/mac")
nic=$(ip -o link | awk -v mac="$mac" 'index($0, mac) { sub(":", "", $2); print $2 }')
[ -n "$nic" ] || { echo "no network card with MAC $mac"; ip -o link; exit 1; }
ip link set "$nic" up
ip -4 addr show dev "$nic" | grep -q "inet $address/" || ip addr add "$address/24" dev "$nic"

mkdir -p "$repo"
mountpoint -q "$repo" || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose repo "$repo"

until docker info >/dev/null 2>&1; do sleep 0.5; done
docker image inspect dss-test/docker-stats-service:latest >/dev/null 2>&1 \
  || docker load -q -i "$share/service-image.tar" >/dev/null
docker image inspect dss-test/busybox:latest >/dev/null 2>&1 \
  || (cd "$repo" && scripts/build-test-image >/dev/null)
echo "$(hostname) ready at $address on $nic: $(docker version --format '{{.Server.Version}}')"
