"""Any WSGI app on a free loopback port, in a thread, for the length of a ``with`` block."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter


@contextmanager
def serving(app: Callable, tls: Any = None, threads: int = 8) -> Iterator[int]:
    """Yields the port. ``tls`` is a tests.support.tlsca.TestCA for HTTPS."""
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=threads)
    server.shutdown_timeout = 1  # a TLS worker may wait for a handshake that never comes
    if tls is not None:
        server.ssl_adapter = BuiltinSSLAdapter(str(tls.server_cert), str(tls.server_key))
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server.bind_addr[1]
    finally:
        server.stop()
        thread.join(5)
