"""The wire: values ⇄ bytes (``codec``) and frames (``frames``: envelope, protocol
version, size limit). No I/O; the only importer of msgpack in hotmesh."""
