"""Client identities PikPak knows (web, android, pc) and the captcha sign.

A refresh token is bound to the client id that minted it, so the platform is a choice
made once per account and kept with the token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    name: str
    client_id: str
    client_secret: str
    client_version: str
    package_name: str
    user_agent: str
    salts: tuple[str, ...]


WEB = Platform(
    name="web",
    client_id="YUMx5nI8ZU8Ap8pm",
    client_secret="dbw2OtmVEeuUvIptb1Coyg",  # noqa: S106 - a public app identity
    client_version="2.0.0",
    package_name="mypikpak.com",
    user_agent=(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/117.0.0.0 Safari/537.36"
    ),
    salts=(
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
)

ANDROID = Platform(
    name="android",
    client_id="YNxT9w7GMdWvEOKa",
    client_secret="dbw2OtmVEeuUvIptb1Coyg",  # noqa: S106 - a public app identity
    client_version="1.53.2",
    package_name="com.pikcloud.pikpak",
    user_agent="ANDROID-com.pikcloud.pikpak/1.53.2",
    salts=(
        "SOP04dGzk0TNO7t7t9ekDbAmx+eq0OI1ovEx",
        "nVBjhYiND4hZ2NCGyV5beamIr7k6ifAsAbl",
        "Ddjpt5B/Cit6EDq2a6cXgxY9lkEIOw4yC1GDF28KrA",
        "VVCogcmSNIVvgV6U+AochorydiSymi68YVNGiz",
        "u5ujk5sM62gpJOsB/1Gu/zsfgfZO",
        "dXYIiBOAHZgzSruaQ2Nhrqc2im",
        "z5jUTBSIpBN9g4qSJGlidNAutX6",
        "KJE2oveZ34du/g1tiimm",
    ),
)

PC = Platform(
    name="pc",
    client_id="YvtoWO6GNHiuCl7x",
    client_secret="1NIH5R1IEe2pAxZE3hv3uA",  # noqa: S106 - a public app identity
    # The desktop app really sends the literal string "undefined" as its version.
    client_version="undefined",
    package_name="mypikpak.com",
    user_agent=(
        "MainWindow Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) PikPak/2.6.11.4955 Chrome/100.0.4896.160 "
        "Electron/18.3.15 Safari/537.36"
    ),
    salts=(
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
)

PLATFORMS: dict[str, Platform] = {p.name: p for p in (WEB, ANDROID, PC)}
BY_CLIENT_ID: dict[str, Platform] = {p.client_id: p for p in PLATFORMS.values()}


def captcha_sign(
    client_id: str,
    client_version: str,
    package_name: str,
    device_id: str,
    timestamp: str,
    salts: tuple[str, ...],
) -> str:
    """``"1." + md5-chain`` over the platform's salts (an empty salt still counts)."""
    value = client_id + client_version + package_name + device_id + timestamp
    for salt in salts:
        value = hashlib.md5((value + salt).encode()).hexdigest()  # noqa: S324 - PikPak's scheme
    return "1." + value


def sign_for(platform: Platform, device_id: str, timestamp: str) -> str:
    return captcha_sign(
        platform.client_id,
        platform.client_version,
        platform.package_name,
        device_id,
        timestamp,
        platform.salts,
    )


def new_device_id() -> str:
    """32 lowercase hex characters shaped like a v4 UUID without dashes, as rclone makes them."""
    raw = bytearray(secrets.token_bytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()
