"""Which module serves each ``inferencing_server.type``: one line per server type."""

from __future__ import annotations

from compiler.servers import azureml_batch, azureml_online, custom, triton
from compiler.servers.base import ServerType

SERVERS: dict[str, ServerType] = {
    kind.name: kind for kind in (azureml_online.TYPE, custom.TYPE, triton.TYPE, azureml_batch.TYPE)
}


def server_type(name: str) -> ServerType:
    """The server type the spec names (the spec's schema admits only these names: a KeyError is pkgc's bug)."""
    return SERVERS[name]
