"""The package's CycloneDX SBOM: generated from the lock at compile time (never by scanning), shipped
in the image at ``/opt/pkgc/sbom.cdx.json``, read back by ``pkgc sbom`` and checked by ``pkgc verify``.

``types`` (inputs, names), ``generate`` (pure), ``collect`` (the I/O before planning), ``image_files``
(reading files back from an engine image or an OCI layout), ``check`` (SBOM against the lock)."""
