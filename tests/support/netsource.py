"""HTTP sessions that connect from a chosen loopback address, to play a second host."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter


class _SourceAdapter(HTTPAdapter):
    def __init__(self, source_ip: str, **kwargs) -> None:
        self._source = (source_ip, 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = self._source
        return super().init_poolmanager(*args, **kwargs)


def session_from(source_ip: str) -> requests.Session:
    """A requests session whose connections leave from ``source_ip`` (e.g. 127.0.0.2)."""
    session = requests.Session()
    adapter = _SourceAdapter(source_ip)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
