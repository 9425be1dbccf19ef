"""The demo: a TCP key-value counter whose logic is an upgradeable hotmesh service.

Stable code lives here (the TCP front end, the app entry, the traffic generator);
the service's callback package ``demokv`` ships as release sources v1 and v2 under
``releases/`` (package data, deliberately not importable as part of hotmesh).
"""
