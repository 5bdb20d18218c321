#!/bin/sh
# pkgc runtime entrypoint: check the model is where the package expects it, pick the port, start
# the Azure ML inference server. Any arguments replace the server command (for debugging).
set -eu

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

if [ "${PKGC_MODEL_MODE:-copy}" = "readonly_mount" ]; then
    if [ ! -d "$AZUREML_MODEL_DIR" ] || [ -z "$(ls -A "$AZUREML_MODEL_DIR" 2>/dev/null)" ]; then
        echo "pkgc: model ${PKGC_MODEL_REF:-?} is not mounted: this package (readonly_mount) expects it read-only at" \
             "$AZUREML_MODEL_DIR; run it with 'pkgc run IMAGE' or 'docker run -v MODEL_FOLDER:$AZUREML_MODEL_DIR:ro ...'" >&2
        exit 78
    fi
fi

# inputs (readonly_mount packages): each path must be mounted; the list is comma-separated, no globbing.
if [ -n "${PKGC_INPUT_PATHS:-}" ]; then
    set -f
    old_ifs="$IFS"; IFS=','
    for input_path in $PKGC_INPUT_PATHS; do
        if [ ! -e "$input_path" ]; then
            echo "pkgc: input $input_path is not mounted: this package (readonly_mount) expects it read-only there;" \
                 "run it with 'pkgc run IMAGE' or 'docker run -v INPUT:$input_path:ro ...'" >&2
            exit 78
        fi
    done
    IFS="$old_ifs"
    set +f
fi

# App Service sets WEBSITES_PORT, many platforms set PORT; otherwise the package's own port.
port="${WEBSITES_PORT:-${PORT:-${PKGC_PORT:-5001}}}"
exec azmlinfsrv --entry_script "$AZUREML_ENTRY_SCRIPT" --model_dir "$AZUREML_MODEL_DIR" --port "$port"
