#!/usr/bin/env bash
# Make sure podman is installed (Debian's package, apt only): the engine that mounts an OCI image as
# a read-only volume (`podman run --mount type=image,...`), which Docker 20.10 cannot. pkgc's model
# images are tested with it, and with busybox-static (a statically linked busybox, what the
# kubernetes-init variant's copier runs inside the shell-less model image). Idempotent; prints one
# line. Exit 1 when they cannot be installed.
set -euo pipefail

say() { printf 'ensure-podman: %s\n' "$*" >&2; }
SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || missing+=(busybox-static)
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { say "error: apt-get not found: install podman by hand"; exit 1; }
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || { say "error: apt-get update failed"; exit 1; }
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { say "error: apt-get install ${missing[*]} failed"; exit 1; }
fi
say "$(podman --version)"
