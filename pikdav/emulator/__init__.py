"""A PikPak-compatible server for tests, benchmarks and the demo.

It speaks PikPak's user API, drive API, download CDN and S3-compatible object store on
one port. It imports only the pure functions of :mod:`pikdav.pikpak` (captcha sign, GCID),
never the client's wire code, so that a bug in the client cannot hide in the emulator.
"""

from .server import Emulator

__all__ = ["Emulator"]
