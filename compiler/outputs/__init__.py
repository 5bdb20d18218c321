"""What happens to a built image after the build: ``--output oci:DIR[:TAG]``/``oci-archive:FILE[:TAG]``
(``targets``, written atomically), ``--push`` (``push``), both from pkgc's store for an OCI-built image
(``stored``) or staged from the engine for a Docker-built one (``publish``), the referrers attached to
each (``attach``), and a readonly_mount package's model image (``model_image``)."""
