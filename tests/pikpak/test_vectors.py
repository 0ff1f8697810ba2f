"""The pure functions shared by client and emulator, against the published vectors."""

from pikdav.pikpak import gcid, identity


def test_captcha_sign_matches_the_fact_sheet_vector():
    sign = identity.sign_for(identity.WEB, "0123456789abcdef0123456789abcdef", "1700000000000")
    assert sign == "1.81abef7a2a707b5e3bcb06b976d800c3"


def test_gcid_vectors():
    assert gcid.gcid_of_bytes(b"") == "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709"
    assert gcid.gcid_of_bytes(b"abc") == "0D3CED9BEC10A777AEC23CCC353A8C08A633045E"
    assert gcid.gcid_of_bytes(bytes(300 * 1024)) == "A6E9980A1C7B85BADED0EB6CDDD159279AB29B3B"


def test_gcid_block_size_grows_with_the_file():
    assert gcid.block_size(128 << 20) == 256 << 10
    assert gcid.block_size(256 << 20) == 512 << 10
    assert gcid.block_size(512 << 20) == 1 << 20
    assert gcid.block_size(5 << 30) == 2 << 20


def test_gcid_is_the_same_whatever_the_chunking():
    data = bytes(range(256)) * 5000
    whole = gcid.gcid_of_bytes(data)
    hasher = gcid.GcidHasher(len(data))
    for i in range(0, len(data), 7777):
        hasher.update(data[i : i + 7777])
    assert hasher.hexdigest() == whole


def test_device_id_looks_like_rclones():
    device = identity.new_device_id()
    assert len(device) == 32 and device[12] == "4" and device[16] in "89ab"


def test_the_emulators_own_salt_tables_give_the_published_vector():
    """The emulator keeps its own copy of the salt lists (DESIGN: no shared oracle); the web
    list is checked by the published vector, computed with the emulator's copy."""
    from pikdav.emulator import clients

    salts = clients.SALTS[(clients.WEB_CLIENT, "2.0.0")]
    sign = identity.captcha_sign(
        clients.WEB_CLIENT,
        "2.0.0",
        "mypikpak.com",
        "0123456789abcdef0123456789abcdef",
        "1700000000000",
        salts,
    )
    assert sign == "1.81abef7a2a707b5e3bcb06b976d800c3"


def test_every_client_platform_signs_as_the_emulator_expects():
    """Two copies typed from the fact sheet, one per side: a client platform whose client id,
    version or salts differ from the emulator's table would be refused by the emulator."""
    from pikdav.emulator import clients

    for platform in identity.PLATFORMS.values():
        assert platform.client_id in clients.KNOWN_CLIENTS, platform.name
        assert clients.SALTS[(platform.client_id, platform.client_version)] == platform.salts
