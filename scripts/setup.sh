#!/usr/bin/env bash
# Set up a fresh machine for pkgc: a Docker engine (installed and started when none answers),
# podman (for model images), pkgc with its test dependencies, and the offline Debian base image.
set -euo pipefail
cd "$(dirname "$0")/.."

# --python-only: just pkgc and its test dependencies (what the unit and golden tests need).
if [ "${1:-}" != "--python-only" ]; then bash scripts/ensure-engine.sh; fi
# podman mounts model images read-only (the model-image e2e test); without it that test skips.
if [ "${1:-}" != "--python-only" ]; then bash scripts/ensure-podman.sh || echo "setup: podman not installed" >&2; fi
python3 -m pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 | grep -v -e "is ignored" -e "Running pip as the 'root'" || true
python3 -c "import compiler, docker, rattler" || { echo "setup: pkgc did not install" >&2; exit 1; }
if [ "${1:-}" != "--python-only" ]; then pkgc base-image build debian-bookworm; fi
