#!/bin/sh
# pkgc Triton launcher: start tritonserver with the given arguments. NVIDIA's image brings
# tritonserver (on PATH or in /opt/tritonserver); otherwise the one inside the nvidia-pytriton wheel of
# the package's environment runs, with the wheel's libraries and a Python-backend folder assembled in
# /tmp (the environment is read-only): the wheel's python backend plus the stub for this Python.
set -eu

if command -v tritonserver >/dev/null 2>&1; then
    exec tritonserver "$@"
fi
if [ -x /opt/tritonserver/bin/tritonserver ]; then
    exec /opt/tritonserver/bin/tritonserver "$@"
fi
root=$(python -c 'import importlib.util as u; s = u.find_spec("pytriton"); print(s.submodule_search_locations[0] if s else "")' 2>/dev/null || true)
if [ -z "$root" ] || [ ! -x "$root/tritonserver/bin/tritonserver" ]; then
    echo "pkgc: no Triton server: use NVIDIA's Triton image (base-images/triton-server) or add nvidia-pytriton to the environment" >&2
    exit 78
fi
version=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
stub="$root/tritonserver/python_backend_stubs/$version/triton_python_backend_stub"
backends=$(mktemp -d /tmp/pkgc-triton.XXXXXX)
mkdir "$backends/python"
ln -s "$root/tritonserver/backends/python/"* "$backends/python/"
if [ -x "$stub" ]; then
    ln -s "$stub" "$backends/python/triton_python_backend_stub"
fi
export LD_LIBRARY_PATH="$(dirname "$root")/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$root/tritonserver/bin/tritonserver" --backend-directory="$backends" "$@"
