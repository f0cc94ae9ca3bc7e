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
# DSS_COMPOSE: the compose files are checked with Compose v2 here
# (tests/dashboards.rs); the host has docker-compose 1.29.
export HOME=/root PATH="$share/bin:$PATH" DSS_EMULATED_CPU=1 DSS_COMPOSE="docker compose"
mkdir -p "$repo"
mountpoint -q "$repo" || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose repo "$repo"
cd "$repo"

until docker info >/dev/null 2>&1; do sleep 0.5; done
echo "== $(uname -r), $(systemctl --version | head -1), cgroup $(stat -fc %T /sys/fs/cgroup)"
docker version --format 'docker {{.Server.Version}}, API {{.Server.APIVersion}} (min {{.Server.MinAPIVersion}})'
docker info --format 'cgroup driver {{.CgroupDriver}}, cgroup version {{.CgroupVersion}}'
podman --version
docker compose version || echo "no docker compose"
# The packages this run proves, and those last proven on this suite: when
# the lane fails, the packages that changed since are named.
suite=$(cat "$share/suite" 2>/dev/null || echo unknown)
proven=tests/platform/proven-$suite
[ -f "$proven" ] || { echo "== no $proven: every package counts as new"; proven=/dev/null; }
dpkg-query -W -f '${Package} ${Version}\n' docker.io docker-cli docker-compose \
  containerd runc podman crun conmon netavark passt systemd "linux-image-$(uname -r)" \
  rootlesskit slirp4netns uidmap libpam-systemd dbus-user-session \
  | sed "s/^linux-image-$(uname -r) /linux-image /" >/tmp/versions
echo "== packages (Debian $suite)"
cat /tmp/versions
changed() {
  # "PACKAGE PROVEN -> NOW" for each package whose version differs.
  awk 'FILENAME == ARGV[1] { if (!/^#/) proven[$1] = $2; next }
       { seen[$1] = 1 }
       proven[$1] != $2 { print "   " $1 " " (proven[$1] == "" ? "(new)" : proven[$1]) " -> " $2 }
       END { for (p in proven) if (!(p in seen)) print "   " p " " proven[p] " -> (gone)" }' \
    "$proven" /tmp/versions
}

scripts/build-test-image
docker load -q -i "$share/service-image.tar"

failed=""
while read -r name binary arguments; do
  echo "== $name"
  started=$(date +%s)
  # $arguments: words (--skip NAME), split on purpose.
  # shellcheck disable=SC2086
  "$binary" --test-threads=1 $arguments || failed="$failed $name"
  echo "== $name took $(($(date +%s) - started)) s"
done <"$share/test-binaries"
if [ -n "$failed" ]; then
  echo "== failed in the VM:$failed"
  if [ -n "$(changed)" ]; then
    echo "== packages changed since the versions last proven ($proven):"
    changed
  else
    echo "== with the versions last proven ($proven)"
  fi
  exit 1
fi
if [ -n "$(changed)" ]; then
  echo "== passed with packages other than $proven names; record these there:"
  changed
fi
