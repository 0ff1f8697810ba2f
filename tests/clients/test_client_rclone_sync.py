"""rclone's WebDAV backend, unchanged, syncing a local tree of 500 files up through the gateway.

What a user does with a WebDAV remote: ``rclone sync`` a folder up, change it, sync again. The
local tree has 500 files from 0 B to 20 MiB (most small, a few large), Unicode names (accents,
CJK, emoji, Greek, Cyrillic), spaces and punctuation, folders up to four levels deep, and a few
files with identical content (PikPak then stores them by hash, without sending the bytes). After
each round ``rclone check --download`` compares every byte through the gateway, and the
emulator's own view of the drive is checked: exactly the local files (paths, sizes, content
hashes), no duplicate or ``(1)``-numbered names, no ``.pikdav-`` temporary names left, nothing
pending, and in the trash exactly the old versions of what was replaced or deleted.

rclone's WebDAV backend with vendor ``other`` cannot keep modification times, so it compares
files by size only: a change that keeps the size is invisible to ``rclone sync``. The test shows
that (``check --download`` does see it) and then pushes those files with ``--ignore-times``, as
a user would.
"""

from __future__ import annotations

import random
import re
import shutil
from collections import Counter
from pathlib import Path

from pikdav.pikpak.gcid import gcid_of_bytes
from tests.support.davclients import Rclone, dirs_of, read_tree
from tests.support.gateway import PIKPAK_USER
from tests.support.pikpak_raw import control

TIMEOUT = 900  # per rclone command
KIB, MIB = 1024, 1024 * 1024
TEMP_PREFIX = ".pikdav-"
COMPLETE = "PHASE_TYPE_COMPLETE"
NUMBERED = re.compile(r"\(\d+\)")

# Folder and file names: accents, CJK, emoji, other scripts, spaces and URL-special punctuation.
FOLDER_WORDS = [
    "Photos",
    "Café Crème",
    "日本語 フォルダ",
    "Música & Vídeo",
    "🎉 Party 2024",
    "naïve déjà vu",
    "中文目录",
    "Zürich Straße",
    "Ελληνικά",
    "Документы",
    "Ñandú",
    "100% done",
    "a+b=c",
    "notes #1",
    "Q&A; [draft]",
    "Ärger über Öl",
]
FILE_STEMS = [
    "résumé",
    "写真",
    "😀 smile",
    "rapport final",
    "Łódź",
    "데이터",
    "naïve",
    "emoji 🚀 rocket",
    "it's here, really",
    "data  two  spaces",
    "Crème brûlée",
    "スクリーンショット",
    "Ω omega",
    "файл",
    "50% off",
    "hash #tag",
    "a&b",
]
EXTENSIONS = [".txt", ".bin", ".jpg", ".mkv", ".flac", ".md", "", ".tar.gz", ".JSON"]


# ---------------------------------------------------------------------------- tree building
def make_folders(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct folder paths, 1 to 4 levels deep, each with its parents."""
    folders: list[str] = []
    seen: set[str] = set()
    while len(folders) < count:
        depth = rng.choice([1, 2, 2, 3, 3, 4, 4])
        parts = rng.sample(FOLDER_WORDS, depth)
        for i in range(1, depth + 1):
            path = "/".join(parts[:i])
            if path.casefold() not in seen:
                seen.add(path.casefold())
                folders.append(path)
    return folders


def file_name(rng: random.Random, index: int) -> str:
    return f"{rng.choice(FILE_STEMS)} {index:03d}{rng.choice(EXTENSIONS)}"


def small_size(rng: random.Random) -> int:
    return 0 if rng.random() < 0.03 else int(rng.random() ** 3 * (64 * KIB - 1))


def build_tree(seed: int) -> dict[str, bytes]:
    """500 files: 450 under 64 KiB (some empty), 45 between 64 KiB and 2 MiB, 5 of 5-20 MiB,
    spread over the root and 40 folders; a few files share their content with another."""
    rng = random.Random(seed)
    folders = ["", *make_folders(rng, 40)]
    sizes = (
        [small_size(rng) for _ in range(450)]
        + [rng.randrange(64 * KIB, 2 * MIB) for _ in range(45)]
        + [5 * MIB + 3, 7 * MIB + 1_001, 9 * MIB - 17, 12 * MIB + 4_096, 20 * MIB]
    )
    tree: dict[str, bytes] = {}
    for index, size in enumerate(sizes):
        folder = rng.choice(folders)
        name = file_name(rng, index)
        tree[f"{folder}/{name}" if folder else name] = rng.randbytes(size)
    # Same bytes under other names: uploaded by hash, the gateway's instant path.
    small_ones = [p for p, d in tree.items() if 0 < len(d) < 64 * KIB]
    sources = rng.sample(small_ones, 4)
    for i, source in enumerate(sources):
        tree[f"{rng.choice(folders[1:])}/copy of {i} {source.rsplit('/', 1)[-1]}"] = tree[source]
    tree[f"{folders[1]}/same as the 9 MiB one.bin"] = next(
        d for d in tree.values() if len(d) == 9 * MIB - 17
    )
    # Drop five other small ones so there are exactly 500.
    for path in rng.sample([p for p in small_ones if p not in sources], 5):
        del tree[path]
    assert len(tree) == 500
    assert len({p.casefold() for p in tree}) == 500
    return tree


def write_tree(root: Path, tree: dict[str, bytes]) -> None:
    for path, data in tree.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def remove_empty_dirs(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def different_bytes(rng: random.Random, data: bytes) -> bytes:
    """Same size, other content (a few bytes flipped somewhere in the middle and at the end)."""
    out = bytearray(data)
    for pos in {len(out) // 2, len(out) - 1, rng.randrange(len(out))}:
        out[pos] ^= 0xFF
    return bytes(out)


# ---------------------------------------------------------------------------- rclone
def logged(log: str, verb: str) -> set[str]:
    """The paths of rclone's ``INFO  : <path>: <verb>...`` lines, e.g. verb ``Copied``."""
    return {m[1] for m in re.finditer(rf"INFO  : (.+?): {verb}\b", log)}


def differing(log: str) -> set[str]:
    """The paths ``rclone check`` reported as different."""
    return {
        m[1]
        for m in re.finditer(r"ERROR : (.+?): (?:contents differ|sizes differ|[^\n]*not in)", log)
    }


def assert_check_clean(rclone: Rclone, local: Path, count: int) -> None:
    proc = rclone("check", str(local), ":webdav:", "--download", check=False)
    report = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, report[-8000:]
    assert "0 differences found" in report, report[-8000:]
    assert f"{count} matching files" in report, report[-8000:]


# ---------------------------------------------------------------------------- the emulator side
def check_drive(base: str, local: dict[str, bytes], trashed_expected: Counter) -> None:
    """The emulator holds exactly ``local`` (live) and ``trashed_expected`` (trashed files)."""
    rows = control(base, f"tree?username={PIKPAK_USER}", method="GET")["files"]
    live = [r for r in rows if not r["trashed"]]
    live_files = [r for r in live if r["kind"] == "drive#file"]
    live_folders = [r for r in live if r["kind"] == "drive#folder"]

    # Nothing half-done anywhere: every upload completed, no temporary names among live items.
    assert [r["path"] for r in rows if r["phase"] != COMPLETE] == []
    assert [r["path"] for r in live if TEMP_PREFIX in r["path"]] == []

    # Live files: exactly the local tree, once each, same sizes and content hashes.
    duplicates = [p for p, n in Counter(r["path"] for r in live_files).items() if n > 1]
    assert duplicates == []
    assert {r["path"]: r["size"] for r in live_files} == {p: len(d) for p, d in local.items()}
    wrong_hash = [r["path"] for r in live_files if r["hash"] != gcid_of_bytes(local[r["path"]])]
    assert wrong_hash == []

    # Live folders: exactly those holding the files (rclone removes the ones it emptied).
    assert Counter(r["path"] for r in live_folders) == Counter(dirs_of(local))

    # No "(1)"-style names the local tree does not have (a clash PikPak resolved by numbering).
    local_names = set(local) | dirs_of(local)
    assert [
        r["path"] for r in live if NUMBERED.search(r["path"]) and r["path"] not in local_names
    ] == []

    # The trash: the old versions of replaced and deleted non-empty files, nothing else (an
    # empty file is deleted for good, there is nothing to keep).
    trashed = Counter(
        (r["path"], r["size"], r["hash"])
        for r in rows
        if r["trashed"] and r["kind"] == "drive#file"
    )
    assert trashed - trashed_expected == Counter(), "unexpected in the trash"
    assert trashed_expected - trashed == Counter(), "missing from the trash"


def old_versions(tree: dict[str, bytes], paths) -> Counter:
    return Counter((p, len(tree[p]), gcid_of_bytes(tree[p])) for p in paths if tree[p])


# ---------------------------------------------------------------------------- the test
def test_rclone_sync_round_trips_a_tree_of_500_files(emulator, gateway, tmp_path):
    rclone = Rclone(
        gateway.url,
        tmp_path / "home",
        timeout=TIMEOUT,
        io_timeout="60s",
        extra_flags=["--transfers", "4", "--checkers", "8"],
    )
    local = tmp_path / "local"
    first = build_tree(seed=2024)
    write_tree(local, first)
    assert sum(map(len, first.values())) < 200 * MIB

    # Round 1: everything goes up; every byte compares equal.
    log = rclone.log("sync", str(local), ":webdav:")
    assert logged(log, "Copied") == set(first), log[-8000:]
    assert_check_clean(rclone, local, 500)
    check_drive(emulator.base_url, first, Counter())

    # Round 2: local edits.
    rng = random.Random(7)
    paths = sorted(first)
    small = [p for p in paths if 0 < len(first[p]) < 64 * KIB]
    big = [p for p in paths if len(first[p]) >= 5 * MIB]
    medium = [p for p in paths if 64 * KIB <= len(first[p]) < 5 * MIB]
    empty = [p for p in paths if not first[p]]
    # The folder renamed locally: one at the top with subfolders (its files are uploaded under
    # the new name and deleted under the old one; rclone does no server-side move here).
    top_folders = Counter(p.split("/")[0] for p in paths if p.count("/") >= 2)
    renamed_from = top_folders.most_common(1)[0][0]
    renamed_to = f"{renamed_from} — renamed"
    moved_away = [p for p in paths if p.startswith(f"{renamed_from}/")]
    assert len(moved_away) >= 10
    outside = [p for p in paths if p not in moved_away]
    same_size = [
        *rng.sample([p for p in small if p in outside], 8),
        rng.choice([p for p in medium if p in outside]),
        rng.choice([p for p in big if p in outside]),
    ]
    rest = [p for p in outside if p not in same_size]
    resized = [
        *rng.sample([p for p in small if p in rest], 7),
        rng.choice([p for p in medium if p in rest]),
        rng.choice([p for p in big if p in rest]),
        rng.choice([p for p in empty if p in rest]),  # empty -> some bytes
    ]
    rest = [p for p in rest if p not in resized]
    emptied = rng.choice([p for p in small if p in rest])  # some bytes -> empty
    rest.remove(emptied)
    deleted = rng.sample([p for p in rest if len(first[p]) < 5 * MIB], 25)
    if not any(p in empty for p in deleted):
        deleted.append(next(p for p in rest if p in empty and p not in deleted))

    second = dict(first)
    for path in same_size:
        second[path] = different_bytes(rng, first[path])
    for path in resized:
        size = len(first[path])
        second[path] = rng.randbytes(rng.choice([size // 2, size + 1, size + 70_000]) or 33)
    second[emptied] = b""
    for path in deleted:
        del second[path]
        (local / path).unlink()
    for path in moved_away:
        second[renamed_to + path[len(renamed_from) :]] = second.pop(path)
    (local / renamed_from).rename(local / renamed_to)
    added = {
        "brand new 🆕.txt": b"new at the top\n",
        "Neu/Ordner/tief/unten/ganz unten – 末端.bin": rng.randbytes(300_000),
        "Neu/leer.txt": b"",
        f"{renamed_to}/added after rename ✓.md": b"# added\n",
        **{
            f"Ελληνικά/νέο αρχείο {i:02d}.dat": rng.randbytes(rng.randrange(50_000))
            for i in range(21)
        },
        "copy of the 20 MiB one.bin": next(d for d in first.values() if len(d) == 20 * MIB),
    }
    second.update(added)
    for path in [*same_size, *resized, emptied]:
        (local / path).write_bytes(second[path])
    write_tree(local, added)
    remove_empty_dirs(local)
    assert read_tree(local) == second

    log = rclone.log("sync", str(local), ":webdav:")
    # Size-only comparison: the same-size edits are not seen, everything else is.
    uploaded = {p for p in second if p not in first} | set(resized) | {emptied}
    assert logged(log, "Copied") == uploaded, log[-8000:]
    assert logged(log, "Deleted") == set(deleted) | set(moved_away), log[-8000:]
    proc = rclone("check", str(local), ":webdav:", "--download", check=False)
    report = proc.stderr.decode("utf-8", "replace")
    assert differing(report) == set(same_size), report[-8000:]
    assert f"{len(same_size)} differences found" in report, report[-8000:]

    # ... pushed on purpose, as a user would once told.
    listed = tmp_path / "same-size.txt"
    listed.write_text("".join(f"{p}\n" for p in same_size), encoding="utf-8")
    log = rclone.log(
        "copy", str(local), ":webdav:", "--ignore-times", "--files-from-raw", str(listed)
    )
    assert logged(log, "Copied") == set(same_size), log[-8000:]
    assert_check_clean(rclone, local, len(second))
    replaced = [*same_size, *resized, emptied]
    check_drive(emulator.base_url, second, old_versions(first, [*replaced, *deleted, *moved_away]))

    # Round 3: nothing changed locally, so nothing is sent: no upload, delete, move or mkdir.
    proc = rclone("sync", str(local), ":webdav:", "-vv", "--dump", "headers")
    log = proc.stderr.decode("utf-8", "replace")
    assert "There was nothing to transfer" in log, log[-8000:]
    assert re.search(r"Transferred:\s+0 B / 0 B", log), log[-8000:]
    assert not logged(log, "Copied") and not logged(log, "Deleted"), log[-8000:]
    methods = Counter(re.findall(r"DEBUG : ([A-Z]+) \S+ HTTP/1\.1\r?\n", log))
    assert set(methods) <= {"PROPFIND", "OPTIONS", "HEAD", "GET"}, methods
    assert methods["PROPFIND"] > len(dirs_of(second)), methods  # it did look at every folder
    trash = old_versions(first, [*replaced, *deleted, *moved_away])
    check_drive(emulator.base_url, second, trash)

    # Round 4: rclone's server-side operations, no bytes through rclone: a folder renamed on the
    # drive (MOVE) and a 20 MiB file copied into a new folder (MKCOL, COPY). The local tree
    # follows suit, and the moved and copied files read back byte for byte.
    greek, moved = "Ελληνικά", "Ελληνικά moved"
    big_one = next(p for p in second if len(second[p]) == 20 * MIB and "/" not in p)
    copied = "Kopie/der große 20 MiB.bin"
    proc = rclone("moveto", f":webdav:{greek}", f":webdav:{moved}", "-vv", "--dump", "headers")
    proc2 = rclone("copyto", f":webdav:{big_one}", f":webdav:{copied}", "-vv", "--dump", "headers")
    log = proc.stderr.decode("utf-8", "replace") + proc2.stderr.decode("utf-8", "replace")
    methods = Counter(re.findall(r"DEBUG : ([A-Z]+) \S+ HTTP/1\.1\r?\n", log))
    assert methods["MOVE"] == 1 and methods["COPY"] == 1, methods
    assert methods["PUT"] == methods["DELETE"] == 0, methods
    (local / greek).rename(local / moved)
    (local / copied).parent.mkdir()
    shutil.copyfile(local / big_one, local / copied)
    third = read_tree(local)
    proc = rclone(
        "check",
        str(local),
        ":webdav:",
        "--download",
        "--include",
        f"/{moved}/**",
        "--include",
        f"/{copied}",
    )
    report = proc.stderr.decode("utf-8", "replace")
    in_moved = sum(1 for p in third if p.startswith(f"{moved}/"))
    assert in_moved >= 21 and f"{in_moved + 1} matching files" in report, report[-8000:]
    check_drive(emulator.base_url, third, trash)


def test_tree_builder_is_deterministic_and_within_bounds():
    tree = build_tree(seed=2024)
    assert tree == build_tree(seed=2024)
    sizes = sorted(len(d) for d in tree.values())
    assert sizes[0] == 0 and sizes[-1] == 20 * MIB
    assert sum(1 for s in sizes if s < 64 * KIB) >= 440
    assert sum(1 for s in sizes if s >= 5 * MIB) == 6  # five plus one copy of the 9 MiB one
    assert max(p.count("/") for p in tree) == 4
    assert any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", p) for p in tree)
    assert any(re.search(r"[\U0001F300-\U0001FAFF]", p) for p in tree)
