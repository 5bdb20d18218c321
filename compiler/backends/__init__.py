"""Back ends: what turns plans into an image. ``Backend`` is the interface; the OCI writer
(``OciBackend``) and the Dockerfile renderer (``DockerfileBackend``) implement it; ``choose_backend``
picks one, once, when the package is resolved."""

from compiler.backends.base import Backend
from compiler.backends.choose import choose_backend

__all__ = ["Backend", "choose_backend"]
