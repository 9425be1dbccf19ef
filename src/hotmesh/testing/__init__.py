"""Helpers for testing hotmesh applications: LocalCluster runs real node processes."""

from hotmesh.testing.cluster import LocalCluster, NodeProcess

__all__ = ["LocalCluster", "NodeProcess"]
