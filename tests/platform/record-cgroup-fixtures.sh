#!/bin/sh
# Records a cgroup v2 container's counter files from the VM into
# /mnt/host/fixtures/cgroup-v2, to be committed as tests/fixtures/cgroup/v2
# (run with 'scripts/platform-lane shell', then
# 'scripts/platform-lane exec tests/platform/record-cgroup-fixtures.sh').
# The container is the one tests/fixtures/cgroup/v1 was recorded from: two
# busy threads held to half a core under a 64 MiB limit, with some memory
# and disk traffic, so every counter has moved.
set -eu
export HOME=/root
out=/mnt/host/fixtures/cgroup-v2
mkdir -p "$out"
until docker info >/dev/null 2>&1; do sleep 0.5; done
docker rm -f fx-cgroup >/dev/null 2>&1 || true
id=$(docker run -d --name fx-cgroup --label dss.test=1 --cpus 0.5 -m 64m dss-test/busybox \
  sh -c 'dd if=/dev/zero of=/tmp/f bs=1M count=8 2>/dev/null; sync;
         (while :; do :; done) & (while :; do :; done) & sleep 3600')
sleep 6
pid=$(docker inspect --format '{{.State.Pid}}' "$id")
dir=/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
for file in cpu.stat cpu.max cpu.pressure memory.current memory.stat memory.max \
  memory.peak memory.events memory.pressure io.stat io.pressure pids.current pids.max; do
  cat "$dir/$file" >"$out/$file"
done
cat "/proc/$pid/net/dev" >"$out/net_dev"
uname -r >"$out/KERNEL"
docker rm -f fx-cgroup >/dev/null
ls -l "$out"
