"""Who is in the mesh: the pure membership view and the driver that runs it."""
