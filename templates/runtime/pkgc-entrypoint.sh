#!/bin/sh
# pkgc runtime entrypoint: check the model is where the package expects it, then start the server.
#   azureml_online  Azure ML's inference server; any arguments replace it (for debugging)
#   custom, triton  the arguments: the server's start command (the image's CMD), from the working folder
#                   (a writable one mirroring the code folder: see below)
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

# Writable places: HOME, TMPDIR and the working folder (code and model stay read-only). Under a read-only
# root filesystem (docker run --read-only) /tmp must be a writable mount (--tmpfs /tmp); HOME moves under it.
writable() { [ -d "$1" ] && [ -w "$1" ] && [ -x "$1" ]; }
export TMPDIR="${TMPDIR:-/tmp}"
if ! writable "$TMPDIR"; then
    echo "pkgc: $TMPDIR is not writable (a read-only root filesystem?): the server needs a writable temporary" \
         "folder; mount one, e.g. 'docker run --read-only --tmpfs /tmp ...', or set TMPDIR to a writable mount" >&2
    exit 78
fi
if [ -z "${HOME:-}" ] || ! writable "$HOME"; then
    export HOME="$TMPDIR/pkgc-home"
    mkdir -p "$HOME"
fi
# The server starts in the image's working folder (the code folder) when it is writable; otherwise in a
# writable working folder holding a link to each of its entries, so a server that reads its settings from
# and writes its state to "." (mlserver start .) finds the one and can do the other.
if ! writable "$PWD"; then
    code="$PWD"
    work="${PKGC_WORK_DIR:-$TMPDIR/pkgc-work}"
    mkdir -p "$work" 2>/dev/null || true
    if ! writable "$work"; then
        echo "pkgc: the working folder $work is not writable; set PKGC_WORK_DIR to a writable folder" >&2
        exit 78
    fi
    for entry in "$code"/* "$code"/.[!.]* "$code"/..?*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue   # an unmatched pattern
        name="${entry##*/}"
        if [ -e "$work/$name" ] && [ ! -L "$work/$name" ]; then
            continue   # the server's own file or folder, from an earlier start of this container
        fi
        ln -sfn "$entry" "$work/$name"
    done
    cd "$work"
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
