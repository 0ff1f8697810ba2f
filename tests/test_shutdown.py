"""Stopping the ``pikdav`` command: SIGTERM ends ``serve``, ``demo`` and ``emulator`` within
5 s whatever is open (an idle kept-alive connection, a proxied stream of a large file, a client
that stops reading), with exit code 0 and "stopped" in the log; a second signal exits at once.

Each scenario runs many times in one test: the hang this guards against (a worker that never
got its shutdown request) came once in 20 to 150 stops.
"""

from __future__ import annotations

import fcntl
import signal
import socket
import struct
import termios
import time

from tests.support.command import (
    basic,
    content_length,
    raw_request,
    read_to_end,
    start,
    write_config,
)
from tests.support.pikpak_raw import control

USER = "alice@example.com"
CYCLES = 20
DEMO_CYCLES = 5
STOP_BOUND = 5.0  # seconds, the requirement


def _idle_keep_alive(url: str) -> socket.socket:
    """A connection that was answered once and is kept alive, idle."""
    sock, head = raw_request(url, "GET", "/healthz")
    assert head.startswith(b"HTTP/1.1 200"), head
    body = b""
    while len(body) < 3 and (data := sock.recv(3 - len(body))):
        body += data
    assert body == b"ok\n"
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _wait_until_queued(sock: socket.socket, size: int, timeout: float = 20) -> None:
    """Wait until at least `size` bytes wait unread in `sock`'s receive queue."""
    deadline = time.monotonic() + timeout
    while (queued := _unread(sock)) < size:
        assert time.monotonic() < deadline, f"only {queued} bytes arrived"
        time.sleep(0.01)


def _unread(sock: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0" * 4))[0]


def _wait_for_log(running, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in running.log():
        assert running.proc.poll() is None, f"exited before logging {text!r}"
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        time.sleep(0.01)


def test_serve_stops_within_5s_with_a_stream_and_a_kept_alive_connection(emulator, tmp_path):
    # Given a 2 GiB file that the CDN serves at 8 MB/s (a stream takes minutes)
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "big.iso", "size": 2 << 30, "seed": 4},
    )
    control(emulator.base_url, "config", {"cdn_rate": 8 << 20})
    config = write_config(tmp_path, emulator)
    for cycle in range(CYCLES):
        serve = start("serve", "-c", config, log_path=tmp_path / f"serve-{cycle}.log")
        try:
            # ... an idle kept-alive connection and a download under way
            idle = _idle_keep_alive(serve.url)
            stream, head = raw_request(
                serve.url, "GET", "/pikpak/big.iso", {"Authorization": basic()}
            )
            assert head.startswith(b"HTTP/1.1 200"), head
            got = len(stream.recv(1 << 16))
            assert got > 0
            # When the server is told to stop
            code, took = serve.stop()
        finally:
            serve.kill()
        # Then it exits at once and cleanly, and both connections are closed
        log = serve.log()
        assert code == 0, log[-3000:]
        assert took < STOP_BOUND, f"cycle {cycle}: {took:.1f} s"
        assert log.rstrip().endswith("pikdav: stopped"), log[-3000:]
        assert "Traceback" not in log
        assert got + read_to_end(stream) < content_length(head)  # the stream was cut
        assert _closed_by_server(idle)
        stream.close()
        idle.close()


def _upload_waiting_for_its_body(url: str) -> socket.socket:
    """A PUT whose client sends half its body, then nothing: once the gateway has asked for
    the body (100 Continue), a worker waits for the rest through the whole grace of a stop."""
    sock, head = raw_request(
        url,
        "PUT",
        "/pikpak/half.bin",
        {"Authorization": basic(), "Content-Length": "100000", "Expect": "100-continue"},
    )
    assert head.startswith(b"HTTP/1.1 100 "), head
    sock.sendall(b"x" * 50_000)
    return sock


def test_a_second_signal_exits_at_once(emulator, tmp_path):
    # Given a stream to a client that reads nothing (the worker is stuck sending) and an
    # upload whose client stopped sending: a stop gives them a grace of about 2 s before
    # shutting their sockets (the stream alone was sometimes between two blocks, and ended
    # at once: the second signal then came after the stop)
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "big.iso", "size": 2 << 30, "seed": 4},
    )
    config = write_config(tmp_path, emulator)
    for cycle in range(CYCLES):
        serve = start("serve", "-c", config, log_path=tmp_path / f"serve-{cycle}.log")
        try:
            stuck, head = raw_request(
                serve.url, "GET", "/pikpak/big.iso", {"Authorization": basic()}, rcvbuf=4096
            )
            assert head.startswith(b"HTTP/1.1 200"), head
            # the server fills the socket buffers and blocks sending its 1 MiB block
            _wait_until_queued(stuck, 2048)
            held = _upload_waiting_for_its_body(serve.url)
            # When a first signal starts the stop and, once it is under way, a second follows
            serve.proc.send_signal(signal.SIGTERM)
            _wait_for_log(serve, "stopping (SIGTERM)")
            code, took = serve.stop(signal.SIGINT)
        finally:
            serve.kill()
        # Then the process is gone at once, before the grace of the first stop is over
        assert code == 128 + signal.SIGINT, serve.log()[-3000:]
        assert took < 1.5, f"cycle {cycle}: {took:.1f} s"
        assert "second signal: exiting at once" in serve.log()
        stuck.close()
        held.close()


def test_demo_stops_within_5s_with_a_client_that_stopped_reading(tmp_path):
    # Fewer cycles: each demo start fills a drive of 10,000 files (2 s); the stop is the
    # code of `serve`'s, which the tests above run 40 times.
    for cycle in range(DEMO_CYCLES):
        demo = start(
            "demo", "--port", "0", "--password", "pw", log_path=tmp_path / f"demo-{cycle}.log"
        )
        try:
            # Finder's streams are proxied (never redirected): the demo's 2 GiB file, unread
            stuck, head = raw_request(
                demo.url,
                "GET",
                "/pikpak/Large/ubuntu-sized-sample.iso",
                {"Authorization": basic("demo", "pw"), "User-Agent": "WebDAVFS/3.0.0"},
                rcvbuf=4096,
            )
            assert head.startswith(b"HTTP/1.1 200"), head
            idle = _idle_keep_alive(demo.url)
            code, took = demo.stop()
        finally:
            demo.kill()
        log = demo.log()
        assert code == 0, log[-3000:]
        assert took < STOP_BOUND, f"cycle {cycle}: {took:.1f} s"
        assert log.rstrip().endswith("pikdav: stopped"), log[-3000:]
        assert "Traceback" not in log
        assert _closed_by_server(idle)
        stuck.close()
        idle.close()


def test_emulator_stops_within_5s_with_a_kept_alive_connection(tmp_path):
    for cycle in range(CYCLES):
        emu = start(
            "emulator", "--account", "a@example.com:pw", log_path=tmp_path / f"emu-{cycle}.log"
        )
        try:
            idle, head = raw_request(emu.url, "GET", "/__emulator__/stats")
            assert head.startswith(b"HTTP/1.1 200"), head
            code, took = emu.stop()
        finally:
            emu.kill()
        log = emu.log()
        assert code == 0, log[-3000:]
        assert took < STOP_BOUND, f"cycle {cycle}: {took:.1f} s"
        assert log.rstrip().endswith("pikdav: stopped"), log[-3000:]
        idle.close()
