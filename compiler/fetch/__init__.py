"""Stage fetch: every locked file brought to a host cache keyed by its hash, and checked."""
