"""Inference servers: one module per server type (spec -> dependencies -> runtime files -> command).

compiler/servers/base.py says what a server type is; compiler/servers/registry.py maps the spec's
``inferencing_server.type`` to its module. A new server is one module here and one registry line."""
