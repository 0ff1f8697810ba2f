"""What a mount refuses, as exceptions the DAV layer turns into statuses (PikPak's own
refusals are :mod:`pikdav.pikpak.errors`). ``str()`` is a short reason, safe to show."""

from __future__ import annotations

from pikdav.pikpak.errors import Conflict


class MountError(Exception):
    """A change the mount refuses; the message says why."""


class ReadOnly(MountError):
    """The mount (or this part of it) cannot be changed."""


class NotAllowed(MountError):
    """A name or place no client may use (the gateway's own names, a mount itself…)."""


class StillUploading(MountError):
    """The file is still on its way to PikPak; moving or copying it must wait."""


class UploadingElsewhere(MountError):
    """The file is a waiting upload of another instance, which alone has its content."""


class TooLarge(MountError):
    """The upload is larger than the gateway accepts."""


class NoRoom(MountError):
    """The gateway has no room on its disk to receive the upload."""


class BodyCut(MountError):
    """The upload ended before the length it announced: nothing is stored."""


class NotLinks(NotAllowed):
    """A file put into the offline drop folder that holds no link PikPak could fetch."""


class LinkRefused(MountError):
    """PikPak refused to start an offline download of a dropped link (its daily limit, a
    link it cannot fetch): nothing is stored."""


class TooManyLinks(TooLarge):
    """A file dropped into the offline folder holds more links than one drop may start."""


class LinksTooFast(MountError):
    """A user dropped more links within a minute than the mount lets one user start;
    ``retry_after``: seconds until this drop would fit."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NameTaken(Conflict):
    """The name is taken (by an item of another kind, or by someone else meanwhile)."""


class FromCache(MountError):
    """PikPak is away: the mount serves what its disk cache holds, and this is not there (or
    is a change). ``retry_after``: seconds until PikPak is tried again."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
