"""demokv: the hotmesh demo's key-value counter service (release v1.1)."""
