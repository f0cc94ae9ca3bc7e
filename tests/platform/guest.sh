#!/bin/sh
# Runs inside the platform-lane VM (scripts/platform-lane): prepares Docker
# and Podman as scripts/test prepares the host, then runs the integration
# test binaries listed in tests/platform/tests, built on the host, against
# the VM's engines, each with the arguments that file gives it.
set -eu
share=/mnt/host
repo=$(cat "$share/repo-path")
# DSS_EMULATED_CPU: the tests that compare timings over one engine second
# widen their tolerances to what a TCG vCPU allows (tests/support/mod.rs).
export HOME=/root PATH="$share/bin:$PATH" DSS_EMULATED_CPU=1
mkdir -p "$repo"
mountpoint -q "$repo" || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose repo "$repo"
cd "$repo"

until docker info >/dev/null 2>&1; do sleep 0.5; done
echo "== $(uname -r), $(systemctl --version | head -1), cgroup $(stat -fc %T /sys/fs/cgroup)"
docker version --format 'docker {{.Server.Version}}, API {{.Server.APIVersion}} (min {{.Server.MinAPIVersion}})'
docker info --format 'cgroup driver {{.CgroupDriver}}, cgroup version {{.CgroupVersion}}'
podman --version

scripts/build-test-image
docker load -q -i "$share/service-image.tar"

failed=""
while read -r name binary arguments; do
  echo "== $name"
  # $arguments: words (--skip NAME), split on purpose.
  # shellcheck disable=SC2086
  "$binary" --test-threads=1 $arguments || failed="$failed $name"
done <"$share/test-binaries"
if [ -n "$failed" ]; then
  echo "== failed in the VM:$failed"
  exit 1
fi
