#!/usr/bin/env bash
# The main job on the bundled example: register the model and its base environment, build the
# package in both modes, run each, and score the sample request.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$(cd "${PKGC_VENV:-.venv}" && pwd)/bin:$PATH"  # pkgc, which setup.sh installs into that venv

export PKGC_WORKSPACE="${PKGC_WORKSPACE:-$PWD/.pkgc/workspace}"
ex=examples/sklearn-regression
model=$(pkgc -q model create --name sklearn-regression --path "$ex/model")
pkgc -q environment create --file "$ex/environment/sklearn-regression-env.yml" >/dev/null

for spec in package-moe.yml package-azure-app.yml; do
  image=$(pkgc build "$ex/$spec" --model "$model")
  container=$(pkgc run "$image" --port 5101 --detach)
  trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
  echo "== $image ($spec) answers:"
  pkgc invoke --port 5101 --request-file "$ex/sample-request.json"
  docker rm -f "$container" >/dev/null
done
