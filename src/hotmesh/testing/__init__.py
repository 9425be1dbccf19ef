"""Helpers for testing hotmesh applications.

``LocalCluster`` runs real node processes (and the ``hotmesh`` command against
them); ``FakeNode``/``FakeLink`` stand in for a node and a client connection in
unit tests without sockets.
"""

from hotmesh.testing.cluster import LocalCluster
from hotmesh.testing.fakes import FakeLink, FakeNode
from hotmesh.testing.process import NodeProcess

__all__ = ["FakeLink", "FakeNode", "LocalCluster", "NodeProcess"]
