#!/usr/bin/env bash
# Set up a fresh machine for pkgc: a Docker engine (installed and started when none answers),
# podman (for model images), pkgc with its test dependencies in a virtual environment, and the
# offline Debian base image.
#
#   scripts/setup.sh [--python-only]   # --python-only: just the venv (what unit and golden tests need)
#
# pkgc goes into a venv (PKGC_VENV, default .venv in the repository) made by PKGC_PYTHON (default
# python3), never into that interpreter itself: Debian's own Python is externally managed (PEP 668)
# and refuses `pip install` outside a venv. `. .venv/bin/activate` puts `pkgc` and the venv's
# `python3` first on PATH. Without the venv module (Debian: python3-venv) it is installed with apt.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PKGC_PYTHON:-python3}"
VENV="${PKGC_VENV:-.venv}"
say() { printf 'setup: %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

if [ "${1:-}" != "--python-only" ]; then bash scripts/ensure-engine.sh; fi
# podman mounts model images read-only (the model-image e2e test); without it that test skips.
if [ "${1:-}" != "--python-only" ]; then bash scripts/ensure-podman.sh || say "podman not installed"; fi
# Debian packages the e2e tests use beyond the engine's: qemu-user-static runs the arm64 base's Python
# explicitly (chroot ROOT /qemu-aarch64-static ...). No binfmt handler is registered: without recommends
# (binfmt-support) its postinst changes nothing on the host.
APT_PACKAGES=(qemu-user-static)
if [ "${1:-}" != "--python-only" ] && ! command -v qemu-aarch64-static >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null \
    || say "apt-get install ${APT_PACKAGES[*]} failed: the arm64 base's qemu check will fail"
fi

# Debian packages pkgc's tests use: qemu-user-static and busybox-static run linux/arm64 images under
# qemu-user in a chroot (`pkgc verify --platform linux/arm64`). --no-install-recommends: qemu's Recommends
# (binfmt-support) would register binfmt_misc handlers, which pkgc never needs and must not change on a
# shared machine. xfsprogs and btrfs-progs make the loop filesystems on which the e2e tests check that a
# model layer shares the model's extents (tests/e2e/test_reflinked_layers.py).
PACKAGES=(qemu-user-static busybox-static xfsprogs btrfs-progs)
if [ "${1:-}" != "--python-only" ]; then
  missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || say "apt-get update failed"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || say "apt-get install ${missing[*]} failed (pkgc verify --platform of a foreign platform will say so)"
  fi
fi

command -v "$PYTHON" >/dev/null 2>&1 || { say "$PYTHON not found (PKGC_PYTHON names the interpreter)"; exit 1; }
# venv needs ensurepip, which Debian ships apart (python3-venv / python3.X-venv)
if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { say "$PYTHON has no venv module: install it by hand"; exit 1; }
  minor="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv "python$minor-venv" >/dev/null \
    || { say "apt-get install python3-venv failed"; exit 1; }
fi
# a venv whose interpreter no longer runs (its base Python was removed or upgraded) is made again
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c "" >/dev/null 2>&1; then rm -rf "$VENV"; fi
if [ ! -e "$VENV/bin/python" ]; then "$PYTHON" -m venv "$VENV"; fi

# installed once per pyproject.toml, checkout and interpreter (CI calls setup twice)
stamp="$(sha256sum pyproject.toml | cut -c1-64) $PWD $("$VENV/bin/python" -V 2>&1)"
if [ "$(cat "$VENV/.pkgc-setup" 2>/dev/null)" != "$stamp" ]; then
  rm -f "$VENV/.pkgc-setup"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 \
    | grep -v -e "is ignored" -e "Running pip as the 'root'" || true
  "$VENV/bin/python" -I -c "import compiler, docker, rattler, pytest" \
    || { say "pkgc did not install into $VENV"; exit 1; }
  printf '%s\n' "$stamp" > "$VENV/.pkgc-setup"
fi
# byte-code for pkgc's own modules: an editable install has none, and where PYTHONDONTWRITEBYTECODE is
# set (CI runners, containers) every pkgc call compiled its ~240 modules again: 0.25 s of each call
"$VENV/bin/python" -m compileall -q -j0 compiler >/dev/null || say "compiling pkgc's byte-code failed (pkgc still runs)"
say "pkgc in $VENV ($("$VENV/bin/python" -c 'import platform; print("Python", platform.python_version())'))"
if [ "${1:-}" != "--python-only" ]; then "$VENV/bin/pkgc" base-image build debian-bookworm; fi
