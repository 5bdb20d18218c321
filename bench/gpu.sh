#!/usr/bin/env bash
# Device check: build a small torch package with pkgc and run it on the GPU.
#
#   bash bench/gpu.sh          # on a machine with an NVIDIA GPU, its driver and nvidia-container-toolkit
#   bash bench/gpu.sh --cpu    # the same build and checks without a GPU (expects the CPU): tests the script
#
# What it does (bench/gpu/: deployment.yml, conda.yaml, src/score.py, make_model.py): copies the example
# into a scratch folder, builds it with `pkgc build` (torch 2.5.1 from PyPI with its CUDA 12 runtime as
# nvidia-* wheels, on pkgc's offline Debian base: no CUDA base image), runs make_model.py in that image
# on the CPU to write the state dict (model/model.pt, seeded) and the expected answer, rebuilds with the
# model (only the model layer changes), then `pkgc verify --gpus all`: the scoring script must report
# torch.cuda.is_available() and the device that computed the predictions (cuda:0), and the predictions
# must equal the CPU's within 1e-3.
#
# Exit codes: 0 passed; 77 skipped: no NVIDIA GPU here (after checking pkgc and the engine); 1 failed;
# 2 bad usage. Budget: under 5 minutes with network to PyPI (it says when it took longer).
# Environment: PKGC (the pkgc command, default `pkgc`, else this checkout's compiler with python3),
# DOCKER (default docker), NVIDIA_SMI (default nvidia-smi), GPUS (default all), TORCH (the requirement,
# default bench/gpu/conda.yaml's torch==2.5.1: CUDA 12.4, drivers >= 525), KEEP=1 keeps the scratch folder
# and the images.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUDGET_S=300
BASE=pkgc/base-debian-bookworm:latest
MODE=gpu
case "${1:-}" in
  "") ;;
  --cpu) MODE=cpu ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "gpu.sh: unknown argument '$1' (use --cpu or nothing)" >&2; exit 2 ;;
esac

if [ -n "${TORCH:-}" ] && ! [[ "$TORCH" =~ ^torch(==|~=|>=|<=)[0-9][0-9A-Za-z.+]{0,40}$ ]]; then
  echo "gpu.sh: TORCH must be a torch requirement such as torch==2.5.1 (got '${TORCH:0:60}')" >&2; exit 2
fi
say() { echo "gpu.sh: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
started=$(date +%s)

# 1. pkgc answers
if [ -n "${PKGC:-}" ]; then
  read -r -a pkgc_cmd <<< "$PKGC"
elif command -v pkgc > /dev/null; then
  pkgc_cmd=("$(command -v pkgc)")  # its path: the function below is also named pkgc
else
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  pkgc_cmd=(python3 -m compiler.cli)
fi
pkgc() { "${pkgc_cmd[@]}" "$@"; }
version=$(pkgc --version 2>&1) || fail "pkgc does not run (${pkgc_cmd[*]}): $version"
say "$version (${pkgc_cmd[*]})"

# 2. the engine answers
read -r -a docker_cmd <<< "${DOCKER:-docker}"
engine=$("${docker_cmd[@]}" version --format '{{.Server.Version}}' 2>&1) || fail "no container engine answers (${docker_cmd[*]} version: $engine)"
say "engine ${docker_cmd[*]} $engine answers"

# 3. a GPU, its driver and the container toolkit
if [ "$MODE" = gpu ]; then
  smi=${NVIDIA_SMI:-nvidia-smi}
  if ! command -v "$smi" > /dev/null; then
    say "SKIPPED: no NVIDIA GPU here ($smi not found); pkgc and the engine answer. Nothing was built."
    exit 77
  fi
  gpus=$("$smi" --query-gpu=index,name,driver_version --format=csv,noheader 2>&1) || {
    say "SKIPPED: no usable NVIDIA GPU here ($smi: $(echo "$gpus" | head -1)); pkgc and the engine answer. Nothing was built."
    exit 77
  }
  say "GPUs: $(echo "$gpus" | tr '\n' ';')"
fi

# 4. the offline base (built once per machine)
if ! "${docker_cmd[@]}" image inspect "$BASE" > /dev/null 2>&1; then
  say "building the offline base image ($BASE)"
  pkgc -q base-image build debian-bookworm > /dev/null || fail "pkgc base-image build debian-bookworm"
fi
if [ "$MODE" = gpu ]; then  # before a long build: can the engine pass GPUs at all?
  gpus_flag=${GPUS:-all}; [[ "$gpus_flag" != *,* || "$gpus_flag" == \"* ]] || gpus_flag="\"$gpus_flag\""  # docker's CSV
  out=$("${docker_cmd[@]}" run --rm --gpus "$gpus_flag" --network none "$BASE" true 2>&1) ||
    fail "the engine cannot give a container GPUs (install nvidia-container-toolkit and restart the engine): $(echo "$out" | head -1)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pkgc-gpu-check.XXXXXX")
images=()
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK and ${images[*]:-no image}"; return; fi
  local image id
  for image in "${images[@]}"; do  # every tag pkgc gave it (NAME:N and NAME:sha256-...)
    id=$("${docker_cmd[@]}" image inspect --format '{{.Id}}' "$image" 2> /dev/null) &&
      "${docker_cmd[@]}" rmi -f "$id" > /dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
cp -r "$HERE/gpu/." "$WORK/"
[ -z "${TORCH:-}" ] || sed -i "s/- torch==.*/- $TORCH/" "$WORK/conda.yaml"
export PKGC_WORKSPACE="$WORK/workspace"

build() {  # build the deployment; print the image reference
  local out
  out=$(pkgc --progress plain build "$WORK/deployment.yml" --json 2> "$WORK/build.log") ||
    { tail -20 "$WORK/build.log" >&2; fail "pkgc build (log above, full log $WORK/build.log)"; }
  python3 -c 'import json, sys; print(json.load(sys.stdin)["image"])' <<< "$out"
}

# 5. the environment, then the model written by torch in that very image, then the package with it
t0=$(date +%s)
image=$(build); images+=("$image")
t1=$(date +%s); say "built $image (environment, no weights yet) in $((t1 - t0)) s"
device=cuda:0; [ "$MODE" = cpu ] && device=cpu
"${docker_cmd[@]}" run --rm --network none --user "$(id -u):$(id -g)" --entrypoint python -v "$WORK:/work" "$image" \
  /work/make_model.py /work/model /work/src /work/request.json /work/expected.json "$device" >&2 ||
  fail "make_model.py in $image"
image=$(build); images+=("$image")
t2=$(date +%s); say "rebuilt $image with model.pt in $((t2 - t1)) s"

# 6. run it on the device: torch sees the GPU and the predictions were computed there
gpu_flag=(); [ "$MODE" = gpu ] && gpu_flag=(--gpus "${GPUS:-all}")
result=$(pkgc verify "$image" "${gpu_flag[@]}" --request-file "$WORK/request.json" --expect "$WORK/expected.json" \
  --rel-tol 1e-3 --json) || fail "pkgc verify ${gpu_flag[*]} (the response must say device $device, see above)"
t3=$(date +%s)
summary=$(python3 -c '
import json, sys
r = json.load(sys.stdin)["response"]
r["predictions"] = [round(p, 4) for p in r["predictions"]]
print("device {device}, cuda_available {cuda_available}, gpu {gpu}, torch {torch} (CUDA runtime {cuda_runtime}), "
      "predictions {predictions}".format(**r))' <<< "$result")
say "verified in $((t3 - t2)) s: $summary"
total=$((t3 - started))
[ "$total" -le "$BUDGET_S" ] || say "note: took $total s, over the ${BUDGET_S} s budget"
say "PASSED ($MODE) in $total s"
