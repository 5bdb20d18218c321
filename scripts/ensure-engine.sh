#!/usr/bin/env bash
# Make sure a Docker engine answers and mmdebstrap is installed, installing and starting them if
# needed (Debian/Ubuntu, as root, apt only: no Docker Hub, no get.docker.com). Idempotent: on a
# machine where both are ready it changes nothing. Prints one line on success.
#
#   scripts/ensure-engine.sh          # DOCKERD_LOG=/path overrides the daemon log file
set -euo pipefail

WAIT_SECONDS="${PKGC_ENGINE_WAIT:-60}"

say() { printf 'ensure-engine: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  if [ "$APT_UPDATED" -eq 0 ]; then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
      || die "apt-get update failed"
    APT_UPDATED=1
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || die "apt-get install $* failed"
}

engine_answers() { docker info >/dev/null 2>&1; }
dockerd_running() {
  local pid
  pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
  [ -n "$pid" ] && [ -d "/proc/$pid" ]
}

# mmdebstrap builds the offline base image; skopeo writes OCI outputs and pushes (pkgc build
# --output/--push); docker-registry is the loopback registry the push tests start. Needed whether
# or not docker already answers.
missing=()
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)

started=""
if ! engine_answers; then
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    missing+=(docker.io)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
    missing=()
  fi
  command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after installing docker.io"

  if ! dockerd_running; then
    log="${DOCKERD_LOG:-/var/log/pkgc-dockerd.log}"
    if ! { : >>"$log"; } 2>/dev/null; then log="/tmp/pkgc-dockerd.log"; fi
    "${SUDO[@]}" nohup dockerd >>"$log" 2>&1 </dev/null &
    started=" (started dockerd, log: $log)"
  fi

  deadline=$((SECONDS + WAIT_SECONDS))
  until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      hint=""
      [ -n "$started" ] && hint="; last daemon log lines: $(tail -n 5 "${log}" 2>/dev/null | tr '\n' ' ')"
      die "docker engine did not answer 'docker info' within ${WAIT_SECONDS}s${hint}"
    fi
    sleep 1
  done
fi

if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
fi
for tool in mmdebstrap skopeo docker-registry; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool still missing after installing it"
done

version="$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)"
echo "engine ready: docker ${version}, $(mmdebstrap --version 2>/dev/null | head -n1)${started}"
