"""Running the emulator: in-process (tests, demo, benchmarks) or as ``pikdav emulator``."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path

from pikdav.httpserver import Server

from .app import EmulatorApp
from .world import World

log = logging.getLogger(__name__)


class Emulator:
    """A PikPak-compatible server on one port (HTTP, or TLS when given a certificate)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        state_dir: str | Path | None = None,
        token_ttl: int = 7200,
        link_ttl: int = 86400,
        threads: int = 64,
    ) -> None:
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="pikdav-emulator-"))
        self.world = World(self.state_dir, token_ttl=token_ttl, link_ttl=link_ttl)
        self.app = EmulatorApp(self.world)
        self.server = Server(
            (host, port),
            self.app,
            numthreads=threads,
            request_queue_size=256,
            timeout=60,
            server_name="pikpak-emulator",
        )
        self.tls = bool(tls_cert)
        if tls_cert:
            self.server.use_tls(str(tls_cert), str(tls_key))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.bind_addr[1]

    @property
    def base_url(self) -> str:
        host = self.server.bind_addr[0]
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> Emulator:
        self.server.prepare()
        self._thread = threading.Thread(
            target=self.server.serve, name="pikpak-emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.prepare()
        self.server.serve()

    def stop(self) -> None:
        self.server.stop()
        if self._thread:
            self._thread.join(timeout=5)
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
