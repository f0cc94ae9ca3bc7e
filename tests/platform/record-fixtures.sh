#!/bin/sh
# Records stats and event payloads from the VM's engines into
# /mnt/host/fixtures, to be committed under tests/fixtures/ (run with
# 'scripts/platform-lane shell', then
# 'scripts/platform-lane exec tests/platform/record-fixtures.sh').
# Each stats payload is the second frame of a stream, so precpu_stats holds
# the previous sample as the service sees it.
set -eu
export HOME=/root
out=/mnt/host/fixtures
mkdir -p "$out"
until docker info >/dev/null 2>&1; do sleep 0.5; done
docker image inspect dss-test/busybox >/dev/null 2>&1 || { echo "import dss-test/busybox first (guest.sh)"; exit 1; }
podman image exists localhost/dss-test/busybox:latest || docker save dss-test/busybox:latest | podman load -q
mkdir -p /run/podman
podman system service --time=0 unix:///run/podman/podman.sock >/tmp/podman-service.log 2>&1 &
service=$!
until [ -S /run/podman/podman.sock ]; do sleep 0.2; done

# second_frame SOCKET ID FILE: the stream's second sample, one line of JSON.
second_frame() {
  curl -sN --max-time 20 --unix-socket "$1" "http://localhost/containers/$2/stats?stream=true" \
    | head -2 | tail -1 >"$3"
}

record() { # engine socket prefix
  cli=$1 socket=$2 prefix=$3
  since=$(date +%s)
  $cli rm -f fx-idle fx-cpu fx-mem fx-cache fx-stop >/dev/null 2>&1 || true
  $cli run -d --name fx-idle --label dss.test=1 dss-test/busybox sleep 3600 >/dev/null
  $cli run -d --name fx-cpu --label dss.test=1 --cpus 0.5 dss-test/busybox sh -c 'while :; do :; done' >/dev/null
  $cli run -d --name fx-mem --label dss.test=1 -m 64m dss-test/busybox \
    sh -c 'dd if=/dev/zero of=/tmp/f bs=1M count=30 2>/dev/null; sleep 3600' >/dev/null
  # 60 MB of page cache: written, then read back.
  $cli run -d --name fx-cache --label dss.test=1 -m 256m dss-test/busybox \
    sh -c 'dd if=/dev/zero of=/tmp/f bs=1M count=60 2>/dev/null; cat /tmp/f >/dev/null; sleep 3600' >/dev/null
  $cli run -d --name fx-stop --label dss.test=1 dss-test/busybox sh -c 'sleep 8' >/dev/null
  sleep 4
  for c in idle cpu mem cache; do
    second_frame "$socket" "fx-$c" "$out/${prefix}_$c.json"
  done
  # Stopped: the frame the stream sends after its container exits.
  curl -sN --max-time 20 --unix-socket "$socket" "http://localhost/containers/fx-stop/stats?stream=true" \
    | tail -1 >"$out/${prefix}_just_stopped.json"
  curl -s --unix-socket "$socket" http://localhost/containers/fx-mem/json >"$out/${prefix}_inspect.json"
  $cli stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}}' fx-idle fx-cpu fx-mem fx-cache >"$out/${prefix}_cli_stats.txt" || true
  $cli rm -f fx-idle fx-cpu fx-mem fx-cache fx-stop >/dev/null
  # The removals' die and destroy events may come after rm returns; until=
  # counts whole seconds.
  sleep 2
  curl -s --max-time 5 --unix-socket "$socket" \
    "http://localhost/events?since=$since&until=$(date +%s)&filters=%7B%22type%22%3A%5B%22container%22%5D%7D" \
    >"$out/${prefix}_container_events.jsonl"
  curl -s --unix-socket "$socket" http://localhost/version >"$out/${prefix}_version.json"
}
# Named after the engine's version: docker28_v2 and podman58_v2 on forky
# (trixie's, recorded before, are docker26_v2 and podman5_v2). Requests name
# no API version, so each payload has its engine's newest shape.
docker_major=$(docker version --format '{{.Server.Version}}' | cut -d. -f1)
podman_version=$(podman version --format '{{.Server.Version}}' | cut -d. -f1,2 | tr -d .)
record docker /var/run/docker.sock "docker${docker_major}_v2"
record podman /run/podman/podman.sock "podman${podman_version}_v2"
kill $service
ls -l "$out"
