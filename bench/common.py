"""What the benchmarks share: the emulator and the gateway as processes, their configs, curl
and PROPFIND as clients, a process's RSS, random content, and the table a run prints.

A benchmark is a script (``python bench/NAME.py``); this module is imported by them, never run.
"""

from __future__ import annotations

import http.client
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import yaml

from pikdav.dav.auth import hash_password
from tests.support import web
from tests.support.command import end_process
from tests.support.pikpak_raw import RawSession, control

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
PIKPAK_USER, PIKPAK_PASSWORD = "alice@example.com", "correct horse"
DAV_USER, DAV_PASSWORD = "alice", "wonderland"
DAV = (DAV_USER, DAV_PASSWORD)
CURL_FORMAT = "%{time_starttransfer} %{time_total} %{size_download} %{http_code}"
T = TypeVar("T")
R = TypeVar("R")


# --- processes -----------------------------------------------------------------------------------


def start_emulator(
    tmp: Path, *, user: str = PIKPAK_USER, password: str = PIKPAK_PASSWORD, ca: Any = None
) -> tuple[subprocess.Popen, str]:
    """A ``pikdav emulator`` process on a free loopback port with one account (over TLS with
    the test CA's server certificate when ``ca`` is given): the process and its URL. Its
    uploads are kept in ``tmp/emulator``, its log in ``tmp/emulator.log``."""
    tmp.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pikdav.cli", "emulator", "--port", "0"]
    if ca is not None:
        command += ["--tls-cert", str(ca.server_cert), "--tls-key", str(ca.server_key)]
    command += ["--account", f"{user}:{password}", "--state", str(tmp / "emulator")]
    log = tmp / "emulator.log"
    with open(log, "wb") as err:  # never into a pipe nobody reads
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
    return proc, _address(proc, "the emulator", log)


def serve(tmp: Path, config: dict, source: Path | None = None) -> tuple[subprocess.Popen, str]:
    """A ``pikdav serve`` process with ``config`` (written to ``tmp``), and its URL; its log
    goes to ``tmp/gateway.log``. ``source``: run the pikdav of that checkout instead."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp / "gateway.log"
    env = dict(os.environ, PYTHONPATH=str(source)) if source is not None else None
    with open(log, "wb") as err:  # one log line per request: never into a pipe we do not read
        proc = subprocess.Popen(
            [sys.executable, "-m", "pikdav.cli", "serve", "-c", str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            cwd=source,
        )
    return proc, _address(proc, "the gateway", log)


def _address(proc: subprocess.Popen, what: str, log: Path) -> str:
    """The URL a pikdav process prints first, without its last slash."""
    url = proc.stdout.readline().strip().rstrip("/")
    if not url:
        proc.wait(timeout=10)
        raise SystemExit(f"{what} did not start:\n{log.read_text()}")
    return url


def gateway_config(
    tmp: Path,
    emulator: str,
    mounts: list[dict],
    *,
    admin: bool = False,
    **server: Any,
) -> dict:
    """A config for ``serve``: one account (``main``) on the emulator at ``emulator``, tokens
    kept in memory, ``mounts``, and the DAV user with every mount."""
    user: dict = {"password_hash": hash_password(DAV_PASSWORD), "mounts": ["*"]}
    if admin:
        user["admin"] = True
    return {
        "server": {"host": "127.0.0.1", "port": 0, **server},
        "state_dir": str(tmp / "state"),
        "accounts": {
            "main": {
                "username": PIKPAK_USER,
                "password": PIKPAK_PASSWORD,
                "token_store": None,
                "user_api": emulator,
                "drive_api": emulator,
            }
        },
        "mounts": mounts,
        "users": {DAV_USER: user},
    }


def stop(proc: subprocess.Popen | None) -> None:
    end_process(proc)


def export_checkout(rev: str, folder: Path) -> Path:
    """The files of commit ``rev`` in ``folder`` (made here), to run a gateway from."""
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def sources(checkout: str | None, tmp: Path) -> dict[str, Path]:
    """The code to run a gateway from, by label: commit ``checkout`` first when given (a
    before), then the working tree."""
    found = {}
    if checkout:
        found[checkout] = export_checkout(checkout, tmp / "old")
    found["working tree"] = ROOT
    return found


# --- clients -------------------------------------------------------------------------------------


def curl(url: str, *extra: str, auth: bool = False) -> tuple[float, float, int, int]:
    """(time to first byte, total time, bytes, final status) of one curl GET into nothing."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", CURL_FORMAT, *extra]
    if auth:
        cmd += ["-u", f"{DAV_USER}:{DAV_PASSWORD}"]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    ttfb, total, size, code = out.split()
    return float(ttfb), float(total), int(float(size)), int(code)


def read_to_end(url: str, auth: tuple[str, str] | None = None) -> int:
    """The bytes of a GET read to its end into one reused buffer, by Python's http.client."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    headers = {"Authorization": requests.auth._basic_auth_str(*auth)} if auth else {}
    conn.request(
        "GET", f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=headers
    )
    resp = conn.getresponse()
    total, buf = 0, bytearray(MIB)
    while n := resp.readinto(buf):
        total += n
    conn.close()
    return total


def propfind(
    url: str,
    auth: tuple[str, str] | None = DAV,
    *,
    session: requests.Session | None = None,
    timeout: float = 600,
) -> requests.Response:
    """A PROPFIND Depth 1 (all properties); anything but a 207 stops the run."""
    answer = web.propfind(url, auth=auth, session=session, timeout=timeout)
    assert answer.status_code == 207, (url, answer.status_code)
    return answer


def seconds_of(call: Callable[[], Any]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def at_once(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``work`` of every item, each in a thread of its own, all at once; the results in order."""
    items = list(items)
    with ThreadPoolExecutor(max(1, len(items))) as pool:
        return list(pool.map(work, items))


# --- what is measured ----------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class RssSampler:
    """A process's VmRSS (KiB) every ``every`` seconds in a thread, while in the ``with``."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid, self.every = pid, every
        self.samples: list[int] = [proc_status(pid)["VmRSS"]]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self.samples.append(proc_status(self.pid)["VmRSS"])


def add_file(base: str, path: str, size: int, seed: int, user: str = PIKPAK_USER) -> str:
    """A synthetic file of ``size`` bytes (its content made from ``seed``) in the emulator
    at ``base``: its id."""
    body = {"username": user, "path": path, "size": size, "seed": seed}
    return control(base, "files", body)["id"]


def cdn_link(
    base: str, file_id: str, user: str = PIKPAK_USER, password: str = PIKPAK_PASSWORD
) -> str:
    """The file's download link, as PikPak gives it to a client at 127.0.0.1."""
    raw = RawSession(base, user, password)
    raw.signin()
    raw.captcha(f"GET:/drive/v1/files/{file_id}")
    return raw.get(f"/drive/v1/files/{file_id}").json()["web_content_link"]


def make_file(path: Path, size: int) -> None:
    """``size`` random bytes: content PikPak cannot know (never an instant upload)."""
    with open(path, "wb") as out:
        for _ in range(size // (64 * MIB)):
            out.write(os.urandom(64 * MIB))
        out.write(os.urandom(size % (64 * MIB)))


def fill_folder(world: Any, user: str, path: str, entries: int, content: bytes = b"") -> None:
    """``entries`` files ``fNNNNN.txt`` in the in-process emulator's folder ``path``."""
    account = world.accounts[user]
    folder = world.ensure_path(account, path)
    blob = world.blobs.add_bytes(content)
    for i in range(entries):
        world.add_node(
            account, folder, f"f{i:05d}.txt", "drive#file", blob=blob, rename_on_clash=False
        )


def drive_on(base: str, user: str, password: str) -> Any:
    """pikdav's own client of the emulator at ``base``, signed in (tokens in memory)."""
    from pikdav.pikpak.drive import Drive
    from pikdav.pikpak.session import Credentials, Session
    from pikdav.pikpak.tokenstore import MemoryTokenStore

    drive = Drive(
        Session(Credentials(user, password), MemoryTokenStore(), user_api=base, drive_api=base)
    )
    drive.about()
    return drive


# --- what is printed -----------------------------------------------------------------------------


def machine() -> str:
    """The machine a figure was measured on: cores and CPU model."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model or platform.processor() or 'unknown CPU'}"


def heading(script: str) -> str:
    """The first line of a run's output: which bench, when, on how many CPUs."""
    return f"# bench/{Path(script).name} — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A Markdown table, as BENCHMARKS.md holds them."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
