#!/bin/sh
# pkgc runtime entrypoint: check the model is where the package expects it, then start the server.
#   azureml_online  Azure ML's inference server; any arguments replace it (for debugging)
#   custom, triton  the arguments: the server's start command (the image's CMD), from the working folder
#   azureml_batch   pkgc's batch driver with the arguments (--input DIR --output DIR ...)
set -eu

server="${PKGC_SERVER:-azureml_online}"
if [ "$server" = "azureml_online" ] && [ "$#" -gt 0 ]; then
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

case "$server" in
    azureml_online)
        # App Service sets WEBSITES_PORT, many platforms set PORT; otherwise the package's own port.
        port="${WEBSITES_PORT:-${PORT:-${PKGC_PORT:-5001}}}"
        # pkgc's gunicorn worker (/opt/pkgc/lib/pkgc_worker.py): connections kept alive, each request in
        # the main thread (the server's scoring timeout intact); yours when you set GUNICORN_CMD_ARGS or
        # ship a gunicorn.conf.py in the code folder.
        if [ -z "${GUNICORN_CMD_ARGS:-}" ] && [ ! -e gunicorn.conf.py ] && [ -f /opt/pkgc/lib/pkgc_worker.py ]; then
            export GUNICORN_CMD_ARGS="--worker-class pkgc_worker.KeepAliveWorker"
            export PYTHONPATH="/opt/pkgc/lib${PYTHONPATH:+:$PYTHONPATH}"
        fi
        exec azmlinfsrv --entry_script "$AZUREML_ENTRY_SCRIPT" --model_dir "$AZUREML_MODEL_DIR" --port "$port" ;;
    azureml_batch)
        exec python /opt/pkgc/bin/pkgc_batch.py "$@" ;;
    *)
        if [ "$#" -eq 0 ]; then
            echo "pkgc: no server command: this $server package was built without one" >&2
            exit 78
        fi
        exec "$@" ;;
esac
