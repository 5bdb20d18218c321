"""Environments assembled on the host for the OCI back end (no code runs inside the image)."""
