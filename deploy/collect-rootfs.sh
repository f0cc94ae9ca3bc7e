#!/bin/sh
# Copies the service binary and the shared libraries it loads into a root
# filesystem tree for a FROM scratch image: collect-rootfs.sh BINARY OUT_DIR.
set -eu
binary="$1"
out="$2"
mkdir -p "$out/usr/local/bin" "$out/etc/docker-stats" "$out/tmp" \
  "$out/var/lib/docker-stats/spool" "$out/var/lib/docker-stats/buffer"
cp "$binary" "$out/usr/local/bin/docker-stats-service"
# ldd lists "name => /path (addr)" and the loader as "/path (addr)".
for lib in $(ldd "$binary" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^\s*\(\/[^ ]*\) (.*/\1/p'); do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
