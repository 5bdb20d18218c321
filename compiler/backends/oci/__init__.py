"""The OCI back end: the plan's layers, config and manifest written by pkgc itself into its OCI
store (``builder``), one image per platform and an index of several; the model as its own image
(``model_image``). It uses ``compiler.oci``, the format library, which knows nothing of plans."""
