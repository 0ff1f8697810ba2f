"""When PikPak cannot be reached at all, the message says where and why, in words.

It used to be requests' text cut at 160 characters: ``cannot reach PikPak (ConnectionError:
… (Caused by NewConnectionError("HTTPConnection(host='127.)`` — the cause cut off.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pikdav.emulator import Emulator
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import LinkNotReady, Unreachable
from pikdav.pikpak.session import Credentials, RetryPolicy, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore
from tests.support.pikpak_raw import control
from tests.support.tlsca import make_test_ca
from tests.support.web import free_port

ONCE = RetryPolicy(attempts=1)
USER = "alice@example.com"


def reach(base: str, **kw) -> str:
    session = Session(
        Credentials(USER, "correct horse"),
        MemoryTokenStore(),
        user_api=base,
        drive_api=base,
        retry=ONCE,
        **kw,
    )
    with pytest.raises(Unreachable) as caught:
        Drive(session).about()
    text = str(caught.value)
    # Where, never which URL: no path, no query, no requests/urllib3 repr.
    assert "/v1/" not in text and "?" not in text and "HTTPConnection" not in text
    return text


def test_a_refused_connection():
    port = free_port()
    assert reach(f"http://127.0.0.1:{port}") == (
        f"cannot reach PikPak at 127.0.0.1:{port}: connection refused"
    )


def test_a_name_that_does_not_resolve():
    text = reach("https://user.pikpak-test.invalid")
    assert text == (
        "cannot reach PikPak at user.pikpak-test.invalid:443: "
        "the host name could not be resolved (DNS)"
    )


def test_a_certificate_that_is_not_trusted(tmp_path):
    ca = make_test_ca(tmp_path / "ca")
    emu = Emulator(
        "127.0.0.1",
        0,
        state_dir=tmp_path / "emu",
        tls_cert=ca.server_cert,
        tls_key=ca.server_key,
    )
    with emu:
        text = reach(emu.base_url)
    assert text.startswith(f"cannot reach PikPak at 127.0.0.1:{emu.port}: ")
    assert "TLS certificate is not trusted" in text and "ca_cert" in text


@contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and reads, but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_an_answer_that_never_comes():
    with silent_server() as port:
        text = reach(f"http://127.0.0.1:{port}", timeout=(1.0, 0.5))
    assert text == (
        f"cannot reach PikPak at 127.0.0.1:{port}: timed out waiting for an answer (0.5 s)"
    )


def test_a_link_that_is_not_ready_ends_the_wait_after_a_few_seconds(emulator):
    """PikPak holds a link back for up to a minute after an upload: say so, do not stall."""
    made = control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "seed.bin", "content": base64.b64encode(b"seed").decode()},
    )
    with emulator.world.lock:  # as if it had just been uploaded
        emulator.world.accounts[USER].nodes[made["id"]].link_ready_at = time.time() + 120
    drive = Drive(
        Session(
            Credentials(USER, "correct horse"),
            MemoryTokenStore(),
            user_api=emulator.base_url,
            drive_api=emulator.base_url,
        )
    )
    started = time.monotonic()
    with pytest.raises(LinkNotReady) as caught:
        drive.download_link(made["id"])
    assert time.monotonic() - started < 20  # the wait is 3 s; it was 30 s of silence
    assert caught.value.retry_after and caught.value.retry_after > 0
    assert "no download link for this file yet" in str(caught.value)
