"""A PROPFIND of a big folder holds its answer once, as the bytes it sends: not also as one
string (two or four bytes a character as soon as one name is not ASCII) and its encoding."""

from __future__ import annotations

import tracemalloc

import requests

USER = "alice@example.com"


def test_a_10_000_entry_answer_is_held_once_as_bytes(emulator, gateway):
    acct = emulator.world.accounts[USER]
    folder = emulator.world.ensure_path(acct, "Many")
    blob = emulator.world.blobs.add_bytes(b"12345")
    for i in range(10_000):
        name = f"电影 {i:05d} — Épisode.mkv" if i % 2 else f"film {i:05d}.mkv"
        emulator.world.add_node(acct, folder, name, "drive#file", blob=blob, rename_on_clash=False)

    def listed() -> int:
        resp = requests.request(
            "PROPFIND",
            gateway.url + "/pikpak/Many/",
            auth=gateway.auth,
            headers={"Depth": "1"},
            stream=True,
            timeout=120,
        )
        assert resp.status_code == 207
        size = 0
        for piece in resp.iter_content(64 * 1024):
            size += len(piece)
        assert size == int(resp.headers["Content-Length"])
        return size

    listed()  # the listing is fetched and cached: what follows only renders the answer
    for _ in range(3):
        tracemalloc.start()
        try:
            size = listed()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert size > 5 << 20  # about 600 bytes an entry
        # The answer once, and a little for one entry at a time and the client's pieces
        # (it was 6.6 times the answer: a list of strings, one joined string, its encoding).
        assert peak < 1.5 * size, (peak, size)
