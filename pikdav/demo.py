"""``pikdav demo``: the gateway on the built-in emulator, with a drive that looks real.

The sample drive has folders, photos and three small real video files of a minute or more
(shipped with the package, see ``demo_media/README.md``), a 2 GiB file whose bytes are
generated on the fly, and a folder of 10,000 files.
"""

from __future__ import annotations

import secrets
import string
import tempfile
from pathlib import Path

from .emulator import Emulator
from .emulator.world import FILE, FOLDER, World

MEDIA = Path(__file__).with_name("demo_media")
PIKPAK_USER = "demo@pikdav.local"
MANY = 10_000

# (shipped file, name on the demo drive, length in seconds: said in README.txt, checked by
# the tests against the file itself)
MOVIES = (
    ("test-pattern.mp4", "Test Pattern (2026).mp4", 90),
    ("mandelbrot.webm", "Mandelbrot Zoom.webm", 60),
    ("color-bars.mkv", "Colour Bars.mkv", 60),
)


def _minutes(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


README = """Welcome to the pikdav demo.

This drive lives in pikdav's built-in PikPak emulator: nothing here leaves your machine.
Open the videos in Movies and seek in them (the test pattern shows its own clock), look at
Photos, copy the 2 GiB file in Large to see the transfer speed, and open "10000 files" to see
how fast a big folder lists.

Movies:
""" + "".join(f"  {name}  ({_minutes(seconds)})\n" for _, name, seconds in MOVIES)


def new_password(length: int = 12) -> str:
    """A random password of letters and digits: safe to paste into the printed shell lines
    (a leading ``-`` would be read as an option by ``rclone obscure``)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def populate(world: World, username: str = PIKPAK_USER) -> None:
    acct = world.add_account(username, secrets.token_urlsafe(12))
    with world.lock:

        def folder(parent: str, name: str) -> str:
            return world.add_node(acct, parent, name, FOLDER).id

        def real(parent: str, name: str, data: bytes) -> None:
            world.add_node(acct, parent, name, FILE, blob=world.blobs.add_bytes(data))

        movies = folder("", "Movies")
        for src, name, _ in MOVIES:
            real(movies, name, (MEDIA / src).read_bytes())
        photos = folder("", "Photos")
        for src in ("photo-testsrc.jpg", "photo-mandelbrot.jpg", "photo-cellauto.png"):
            real(photos, src.removeprefix("photo-"), (MEDIA / src).read_bytes())
        docs = folder("", "Documents")
        real(docs, "README.txt", README.encode())
        large = folder("", "Large")
        world.add_node(
            acct,
            large,
            "ubuntu-sized-sample.iso",
            FILE,
            blob=world.blobs.add_synthetic(2 << 30, 2026),
        )
        many = folder("", f"{MANY} files")
        for i in range(1, MANY + 1):
            world.add_node(
                acct,
                many,
                f"file-{i:05d}.txt",
                FILE,
                rename_on_clash=False,
                blob=world.blobs.add_synthetic(100 + i, i % 8),
            )
        for node in acct.nodes.values():
            node.link_ready_at = 0.0


def start_demo_emulator(state_dir: Path | None = None) -> Emulator:
    emulator = Emulator("127.0.0.1", 0, state_dir=state_dir)
    populate(emulator.world)
    return emulator.start()


def demo_config(
    emulator: Emulator, host: str, port: int, password_hash: str, state_dir: Path | None = None
) -> dict:
    acct = emulator.world.accounts[PIKPAK_USER]
    return {
        "server": {"host": host, "port": port, "threads": 32},
        "state_dir": str(state_dir or Path(tempfile.mkdtemp(prefix="pikdav-demo-"))),
        "accounts": {
            "demo": {
                "username": PIKPAK_USER,
                "password": acct.password,
                "token_store": "memory",
                "user_api": emulator.base_url,
                "drive_api": emulator.base_url,
            }
        },
        "mounts": [
            {
                "name": "pikpak",
                "account": "demo",
                "download": "auto",
                "redirect_networks": ["127.0.0.1/32"],
            }
        ],
        "users": {"demo": {"password_hash": password_hash, "mounts": ["*"]}},
    }


def instructions(url: str, user: str, password: str) -> str:
    mount = url.rstrip("/") + "/pikpak"
    return f"""pikdav demo is running on the built-in PikPak emulator.

  WebDAV URL:  {url}
  user:        {user}
  password:    {password}

Mount it:
  Windows Explorer  net use P: {mount} /user:{user} {password}
                    (plain HTTP needs BasicAuthLevel=2, see the README)
  macOS Finder      Go > Connect to Server…  {url}
  rclone            rclone lsf :webdav: --webdav-url {mount} \\
                      --webdav-vendor other --webdav-user {user} \\
                      --webdav-pass "$(rclone obscure '{password}')"
                    (rclone about :webdav: with the same flags shows the quota)
  curl              curl -L -u {user}:{password} {mount}/Documents/README.txt
                    (-L: the demo sends local clients to the emulator's CDN)

Press Ctrl+C to stop."""
