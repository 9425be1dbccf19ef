"""The console: server sessions inside every node (exec, output routing,
interrupt, completion, audit) and the client and ptpython front end of
``hotmesh attach/eval/run``. See docs/how-to/attach-to-a-node.md and
docs/reference/console-protocol.md.

Layout: ``protocol`` declares every message kind and builds each message;
``front`` stands for the server on a node until the first console message,
with ``hooks`` (``routing``'s output proxies, ``interrupt``'s sleep, the
namespace of shipped code) installed as the node starts; ``server``
(protocol handlers on the node) drives ``session`` (one namespace and worker
thread per attach) with ``output`` (flow-controlled outbox), ``cell``
(compiling, tracebacks, pretty results),
``completion``, ``audit``, ``leases`` and ``helpers`` (with ``activity`` for
``ps()``/``where()``); ``status`` answers ``hotmesh status``/``who``;
``client`` speaks the protocol over a connection and ``repl`` puts ptpython
on top.
"""
