"""The OCI back end: layers as normalised tars in a content-addressed blob store, base images by
digest from pkgc's local OCI store, image config + manifest written directly, no daemon needed."""
