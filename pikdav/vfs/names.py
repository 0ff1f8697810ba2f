"""Which names a path can carry, and how a name PikPak holds is shown when it cannot.

PikPak accepts names with control characters (the PikPak app and offline tasks can make
them), but XML 1.0 cannot carry most of them, so one such name would make its whole folder's
PROPFIND answer unreadable. The gateway refuses them in new names and shows stored ones with
each control character replaced by its Unicode control picture (U+2400–U+241F, U+2421), as
rclone's name encoding does; characters without a picture become U+FFFD. The shown name is
the item's path from then on: reading, replacing, moving and deleting work through it.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

MAX_NAME = 255  # characters; PikPak refuses longer names

# C0 and C1 controls and DEL; U+FFFE/U+FFFF and lone surrogates (not characters at all).
_UNFIT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def unfit_character(name: str) -> str | None:
    """The first character of ``name`` that a path may not carry, or None."""
    found = _UNFIT.search(name)
    return found.group() if found else None


def _picture(match: re.Match[str]) -> str:
    char = match.group()
    if char < "\x20":
        return chr(0x2400 + ord(char))
    if char == "\x7f":
        return "\u2421"
    return "\ufffd"


def shown_name(name: str) -> str:
    """``name`` as a path can carry it: unchanged unless it holds an unfit character or is
    longer than PikPak's own limit (cut there; a clash is then numbered like any other)."""
    return _UNFIT.sub(_picture, name)[:MAX_NAME]


HIDDEN_PREFIX = ".pikdav-"  # the gateway's own temporary names: never listed, never accepted

# What Finder, Explorer and Kodi probe for in every folder they open; PikPak hardly ever has
# them, so such a name is looked up in cached listings only and never costs an upstream call.
_PROBES = re.compile(
    r"^(\._.*|\.DS_Store|Thumbs\.db|desktop\.ini|\.localized|\.hidden|"
    r"\.metadata_never_index|\.Spotlight-V100|\.Trashes|\.nomedia|"
    r"\.ql_.*)$",
    re.IGNORECASE,
)
# Finder's metadata files: ``._name`` (AppleDouble) beside a file, ``.DS_Store`` in a folder.
_FINDER_METADATA = re.compile(r"^(\._.+|\.DS_Store)$")


def is_probe(name: str) -> bool:
    """A name clients ask for to learn about a folder, not one a user made."""
    return bool(_PROBES.match(name))


def is_finder_metadata(name: str) -> bool:
    """A file Finder writes beside the user's files (kept out of PikPak by default)."""
    return bool(_FINDER_METADATA.match(name))


def content_type(name: str, mime_type: str = "") -> str:
    """The content type of a file: PikPak's when it has one (and XML can carry it), else a
    guess from the name."""
    if mime_type and unfit_character(mime_type) is None:
        return mime_type
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


# Unicode normalisation. Finder spells names decomposed (NFD: "e" + U+0301), Windows and
# most others composed (NFC: U+00E9); to a user both are one name. Names equal under NFC are
# one name on every lookup and clash check, and a new name is stored on PikPak in NFC, as
# rclone stores it. A name PikPak already holds in another spelling keeps it, and is found
# by either spelling.


def same_name_key(name: str) -> str:
    """What two spellings of one name have in common: their NFC form."""
    return unicodedata.normalize("NFC", name)


def stored_name(name: str) -> str:
    """A new name as pikdav stores it on PikPak: NFC."""
    return unicodedata.normalize("NFC", name)


def refused_name(name: str) -> str | None:
    """Why PikPak would refuse ``name`` for a new item, or store it under another name; None
    when it takes it as it is. (Control characters and length: :func:`unfit_character`,
    :data:`MAX_NAME`.)"""
    if not name.strip():
        # PikPak trims a name first: one of spaces only is file_name_empty.
        return "names may not be empty or only spaces (PikPak refuses them)"
    if name[-1].isspace() or name.endswith("."):
        # rclone's PikPak backend encodes trailing spaces and dots: PikPak drops them, so the
        # item would appear under another name than the one asked for.
        return "names may not end with a space or a dot (PikPak drops them)"
    if "/" in name or "\\" in name:
        return "names may not contain '/' or '\\'"
    return None
