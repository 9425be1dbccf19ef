"""The console: server sessions inside every node (exec, output routing,
interrupt, completion, audit) and the client and ptpython front end of
``hotmesh attach/eval/run``. See docs/how-to/attach-to-a-node.md and
docs/reference/console-protocol.md.

Layout: ``server`` (protocol handlers on the node) drives ``session`` (one
namespace and worker thread per attach) with ``output``, ``interrupt``,
``cell``, ``completion``, ``audit``, ``leases`` and ``helpers``; ``client``
speaks the protocol over a connection and ``repl`` puts ptpython on top.
"""
