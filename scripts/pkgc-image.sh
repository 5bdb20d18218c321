#!/usr/bin/env bash
# Build pkgc's own builder image, pkgc/pkgc:<version> and pkgc/pkgc:latest, with pkgc's own OCI
# writer (compiler/selfimage/): the offline Debian base (built here first when missing), skopeo,
# pkgc's locked runtime venv and its source, user 10001, entrypoint `pkgc`. Loaded into the engine
# when one answers, else left in pkgc's OCI store. See docs/ci.md.
#
#   bash scripts/pkgc-image.sh [--no-load] [--json] [-q]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PKGC_IMAGE_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "${PKGC_VENV:-.venv}/bin/python" ]; then PY="${PKGC_VENV:-.venv}/bin/python"; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m compiler.cli -q base-image build debian-bookworm >/dev/null
exec "$PY" -m compiler.selfimage "$@"
