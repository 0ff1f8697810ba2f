"""A cheroot connection whose socket writer sends large blocks without copying them.

cheroot's writer copies every block twice (into its buffer, then out of it as bytes)
before sending; for the 1 MiB blocks of a streamed download that was about a sixth of a
server's CPU. Used by the gateway and by the emulator's CDN.
"""

from __future__ import annotations

from cheroot.makefile import MakeFile, StreamWriter
from cheroot.server import HTTPConnection

_DIRECT = 65536


class DirectWriter(StreamWriter):
    def write(self, val, *args, **kwargs):
        if len(val) < _DIRECT:
            return super().write(val, *args, **kwargs)
        self._checkClosed()
        with self._write_lock:
            self._flush_unlocked()
            view = memoryview(val)
            while view:
                try:
                    sent = self.raw.write(view)
                except BlockingIOError as exc:
                    sent = exc.characters_written
                view = view[sent or 0 :]
        self.bytes_written += len(val)
        return len(val)


class DirectWriteConnection(HTTPConnection):
    def __init__(self, server, sock, makefile=MakeFile) -> None:
        super().__init__(server, sock, makefile)
        if type(self.wfile) is StreamWriter:
            self.wfile = DirectWriter(sock, "wb", self.wbufsize)
