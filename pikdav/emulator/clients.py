"""The apps PikPak's user API knows, as the emulator checks them: client ids, and the captcha
sign's salt lists by (client id, app version).

These are the emulator's own copies of the facts in ``shared/reference/pikpak-api.md``, typed
from there and not taken from the client's :mod:`pikdav.pikpak.identity`: a mistake in the
client's tables must make the emulator refuse its signs, not agree with them. Only the sign
function itself, a pure function checked against the published vector, is shared.
"""

from __future__ import annotations

WEB_CLIENT = "YUMx5nI8ZU8Ap8pm"
ANDROID_CLIENT = "YNxT9w7GMdWvEOKa"
PC_CLIENT = "YvtoWO6GNHiuCl7x"

KNOWN_CLIENTS = frozenset({WEB_CLIENT, ANDROID_CLIENT, PC_CLIENT})

# Salt lists by (client id, client version); PikPak ties them to the app's version.
SALTS: dict[tuple[str, str], tuple[str, ...]] = {
    (WEB_CLIENT, "2.0.0"): (
        "C9qPpZLN8ucRTaTiUMWYS9cQvWOE",
        "+r6CQVxjzJV6LCV",
        "F",
        "pFJRC",
        "9WXYIDGrwTCz2OiVlgZa90qpECPD6olt",
        "/750aCr4lm/Sly/c",
        "RB+DT/gZCrbV",
        "",
        "CyLsf7hdkIRxRm215hl",
        "7xHvLi2tOYP0Y92b",
        "ZGTXXxu8E/MIWaEDB+Sm/",
        "1UI3",
        "E7fP5Pfijd+7K+t6Tg/NhuLq0eEUVChpJSkrKxpO",
        "ihtqpG6FMt65+Xk+tWUH2",
        "NhXXU9rg4XXdzo7u5o",
    ),
    (ANDROID_CLIENT, "1.53.2"): (
        "SOP04dGzk0TNO7t7t9ekDbAmx+eq0OI1ovEx",
        "nVBjhYiND4hZ2NCGyV5beamIr7k6ifAsAbl",
        "Ddjpt5B/Cit6EDq2a6cXgxY9lkEIOw4yC1GDF28KrA",
        "VVCogcmSNIVvgV6U+AochorydiSymi68YVNGiz",
        "u5ujk5sM62gpJOsB/1Gu/zsfgfZO",
        "dXYIiBOAHZgzSruaQ2Nhrqc2im",
        "z5jUTBSIpBN9g4qSJGlidNAutX6",
        "KJE2oveZ34du/g1tiimm",
    ),
    (ANDROID_CLIENT, "1.47.1"): (
        "Gez0T9ijiI9WCeTsKSg3SMlx",
        "zQdbalsolyb1R/",
        "ftOjr52zt51JD68C3s",
        "yeOBMH0JkbQdEFNNwQ0RI9T3wU/v",
        "BRJrQZiTQ65WtMvwO",
        "je8fqxKPdQVJiy1DM6Bc9Nb1",
        "niV",
        "9hFCW2R1",
        "sHKHpe2i96",
        "p7c5E6AcXQ/IJUuAEC9W6",
        "",
        "aRv9hjc9P+Pbn+u3krN6",
        "BzStcgE8qVdqjEH16l4",
        "SqgeZvL5j9zoHP95xWHt",
        "zVof5yaJkPe3VFpadPof",
    ),
    # The desktop app really sends the literal string "undefined" as its version.
    (PC_CLIENT, "undefined"): (
        "KHBJ07an7ROXDoK7Db",
        "G6n399rSWkl7WcQmw5rpQInurc1DkLmLJqE",
        "JZD1A3M4x+jBFN62hkr7VDhkkZxb9g3rWqRZqFAAb",
        "fQnw/AmSlbbI91Ik15gpddGgyU7U",
        "/Dv9JdPYSj3sHiWjouR95NTQff",
        "yGx2zuTjbWENZqecNI+edrQgqmZKP",
        "ljrbSzdHLwbqcRn",
        "lSHAsqCkGDGxQqqwrVu",
        "TsWXI81fD1",
        "vk7hBjawK/rOSrSWajtbMk95nfgf3",
    ),
}
