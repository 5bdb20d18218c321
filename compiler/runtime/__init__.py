"""Running built packages: start a container (mounting the model when needed), probe, invoke."""
