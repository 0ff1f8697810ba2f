"""The PikPak wire protocol: identities, captcha sign, GCID, session, drive operations.

This package's ``__init__`` imports nothing on purpose: the emulator imports the pure
functions in :mod:`pikdav.pikpak.identity` and :mod:`pikdav.pikpak.gcid` (checked against
published test vectors) and must not pull in the client's wire code.
"""
