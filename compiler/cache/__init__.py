"""pkgc's host cache (``$PKGC_CACHE_DIR``, default ``~/.cache/pkgc``): what its parts hold, who may
use it at a time, the staging a killed run leaves, and its storage faults as one line each."""
