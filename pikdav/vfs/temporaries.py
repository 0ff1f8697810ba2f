"""The hidden temporaries that uploads make on PikPak, and their removal when an upload is cut.

Every upload goes up under a hidden name (``.pikdav-put-…``, see :mod:`.writer`) and is renamed
into place once complete. An upload cut by a stop or a crash would leave PikPak that file
forever: pending, invisible in listings, and counted in the drive (20 stops left 820 MB).
So each temporary is written down in ``<state_dir>/temporaries/<mount>/`` before the request
that makes it, with its folder and name, and its id once PikPak has made it; the record goes
when the temporary has its real name or is deleted.

- **At a stop**, the temporaries still going up are given up: none of them is renamed into
  place any more, and each is deleted (within a bound; the rest waits for the next start).
- **At a start**, before any background upload resumes, whatever the records of earlier runs
  name and PikPak still holds *under that hidden name* is deleted. An item that has another
  name by now was renamed into place (the crash came after the rename): it is a user's file
  and stays. Records are this ``state_dir``'s own, so another instance of the gateway (with
  a state_dir of its own) never touches a temporary it did not make, even on one Redis.

The log says what was removed, each name quoted with its control and direction characters
escaped.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import NotFound, PikPakError
from pikdav.pikpak.types import File

log = logging.getLogger(__name__)

_RECORD = ".json"
_WRITING = ".writing-"  # a record being written (never read)


@dataclass
class Temporary:
    """One hidden upload in flight: where, under which name, and (once made) its id. One of
    no :class:`Temporaries` (``owner`` None) is written down nowhere."""

    key: str
    folder_id: str
    name: str
    file_id: str = ""
    owner: Temporaries | None = field(default=None, compare=False, repr=False)
    # Set when a stop gives the upload up: the uploader stops at its next request to the
    # store, and the writer never renames it into place.
    abandoned: threading.Event = field(default_factory=threading.Event, compare=False)
    renaming: bool = False

    def record(self) -> bytes:
        data = {"folder_id": self.folder_id, "name": self.name, "file_id": self.file_id}
        return json.dumps(data).encode()

    # The writer's side.
    def made(self, item: File) -> None:
        """PikPak has made the temporary: its id is written down."""
        self.file_id = item.id
        if self.owner is not None:
            self.owner._write(self)

    def may_rename(self) -> bool:
        """Whether the complete temporary may now take its real name (False: a stop gave
        it up; it is to be deleted instead)."""
        return self.owner is None or self.owner._may_rename(self)

    def gone(self) -> None:
        """The temporary has its real name, or is deleted: nothing is left to remove."""
        if self.owner is not None:
            self.owner._forget(self)

    def ended(self) -> None:
        """The upload failed: the uploader deleted what it had made when it could; the
        record stays for the next start to make sure."""
        if self.owner is not None:
            self.owner._end(self)


class Temporaries:
    """The records of one mount's hidden uploads (see the module's doc)."""

    def __init__(self, directory: Path, drive: Drive) -> None:
        self.directory = directory
        self.drive = drive
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._live: dict[str, Temporary] = {}
        self._left = self._read_left()  # records of earlier runs, for sweep()

    # ------------------------------------------------------------------ records
    def _path(self, key: str) -> Path:
        return self.directory / f"{key}{_RECORD}"

    def _write(self, temp: Temporary) -> None:
        writing = self.directory / f"{_WRITING}{temp.key}"
        writing.write_bytes(temp.record())
        os.replace(writing, self._path(temp.key))  # a stop leaves the old record or the new

    def _read_left(self) -> list[Temporary]:
        left = []
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(_WRITING):
                path.unlink(missing_ok=True)  # its temporary was never asked for
                continue
            try:
                data = json.loads(path.read_bytes())
                left.append(
                    Temporary(
                        path.stem, str(data["folder_id"]), str(data["name"]), str(data["file_id"])
                    )
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("cannot read the upload record %s (%s); it is removed", path, exc)
                path.unlink(missing_ok=True)
        return left

    def _forget(self, temp: Temporary) -> None:
        with self._lock:
            self._live.pop(temp.key, None)
        self._path(temp.key).unlink(missing_ok=True)

    # ------------------------------------------------------------------ the writer's side
    def making(self, folder_id: str, name: str) -> Temporary:
        """Write down the temporary ``folder_id/name`` before the request that makes it."""
        temp = Temporary(secrets.token_hex(8), folder_id, name, owner=self)
        self._write(temp)
        with self._lock:
            self._live[temp.key] = temp
        return temp

    def _may_rename(self, temp: Temporary) -> bool:
        with self._lock:
            if temp.abandoned.is_set():
                return False
            temp.renaming = True
            return True

    def _end(self, temp: Temporary) -> None:
        with self._lock:
            self._live.pop(temp.key, None)

    # ------------------------------------------------------------------ stop and start
    def give_up(self) -> None:
        """At a stop: every temporary still going up is given up and deleted."""
        with self._lock:
            cut = [t for t in self._live.values() if not t.renaming]
            for temp in cut:
                temp.abandoned.set()
        if cut:
            self._remove(cut, "cut by the stop")

    def sweep(self) -> bool:
        """At a start: remove what the records of earlier runs name (see the module's doc).
        False when PikPak could not be asked about some (their records stay)."""
        left, self._left = self._left, []
        kept = self._remove(left, "left by an earlier run")
        self._left = kept
        return not kept

    @property
    def left(self) -> int:
        """How many records of earlier runs wait for sweep()."""
        return len(self._left)

    def _remove(self, temps: Iterable[Temporary], why: str) -> list[Temporary]:
        """Delete each temporary that PikPak still holds under its hidden name; those PikPak
        could not be asked about."""
        kept: list[Temporary] = []
        by_folder: dict[str, list[Temporary]] = {}
        for temp in temps:
            if temp.file_id:
                try:
                    self._remove_by_id(temp, why)
                except PikPakError as exc:
                    log.warning("could not remove the temporary upload %r: %s", temp.name, exc)
                    kept.append(temp)
            else:
                by_folder.setdefault(temp.folder_id, []).append(temp)
        for folder_id, named in by_folder.items():
            try:
                self._remove_by_name(folder_id, named, why)
            except PikPakError as exc:
                log.warning("could not look for temporary uploads in a folder: %s", exc)
                kept += named
        return kept

    def _remove_by_id(self, temp: Temporary, why: str) -> None:
        try:
            item = self.drive.get_file(temp.file_id)
        except NotFound:
            self._forget(temp)
            return
        if item.name == temp.name:  # the name holds a random part: it is ours alone
            self.drive.delete([item.id])
            log.info("removed the temporary upload %r from PikPak (%s)", temp.name, why)
        self._forget(temp)  # another name by now: renamed into place, a user's file

    def _remove_by_name(self, folder_id: str, named: list[Temporary], why: str) -> None:
        # Made by a request whose answer never came: found in its folder, pending ones too.
        try:
            items = {f.name: f for f in self.drive.iter_folder(folder_id, with_pending=True)}
        except NotFound:
            items = {}  # the folder is gone, and what was in it
        for temp in named:
            item = items.get(temp.name)
            if item is not None:
                self.drive.delete([item.id])
                log.info("removed the temporary upload %r from PikPak (%s)", temp.name, why)
            self._forget(temp)
