"""Provenance: an in-toto statement with a SLSA v1 predicate for every package, its DSSE signature
with the user's key, and both (with the SBOM) attached to the image as OCI referrers."""
