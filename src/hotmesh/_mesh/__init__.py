"""The only importer of zmq: cookie → CURVE keys, ZAP, sockets, the I/O thread and
its poll loop, client connections, and the per-host registry of local nodes."""
