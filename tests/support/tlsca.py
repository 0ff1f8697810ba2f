"""A throw-away certificate authority for serving the emulator over TLS.

rclone's pikpak backend only speaks HTTPS to fixed ``*.mypikpak.com`` names, so the
emulator must present a certificate for those names that rclone (Go's crypto/x509)
trusts via ``--ca-cert``.  Everything here is generated fresh per test session.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

#: Names the server certificate is valid for: every host rclone's pikpak backend
#: may contact (API, user, download and virtual-host S3 bucket hosts) plus loopback.
SERVER_DNS_NAMES: tuple[str, ...] = (
    "mypikpak.com",
    "*.mypikpak.com",
    "mypikpak.net",
    "*.mypikpak.net",
    "localhost",
)
SERVER_IPS: tuple[str, ...] = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


@dataclass(frozen=True)
class TestCA:
    """Paths of the PEM files written by :func:`make_test_ca`."""

    __test__ = False  # not a pytest test class, despite the name

    ca_cert: Path
    server_cert: Path
    server_key: Path

    def server_ssl_context(self) -> ssl.SSLContext:
        """A server-side context presenting the server certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile=str(self.server_cert), keyfile=str(self.server_key))
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client-side context that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pikdav tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    # Keys are test-only, but keep them owner-readable anyway.
    path.write_bytes(data)
    path.chmod(0o600)


def make_test_ca(directory: Path) -> TestCA:
    """Create a CA and a server certificate for the PikPak host names in ``directory``.

    Writes ``ca.pem``, ``server.pem`` and ``server-key.pem`` (the CA key is kept
    in memory only: nothing else ever needs to be signed).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_before = now - dt.timedelta(days=1)
    not_after = now + dt.timedelta(days=30)

    # ECDSA P-256: generation is instant and Go's TLS stack supports it everywhere.
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("pikdav test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_DNS_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("mypikpak.com"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Go requires SANs (the CN is ignored for host name checks).
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    result = TestCA(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
    )
    result.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    result.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        result.server_key,
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    log.debug("test CA written to %s", directory)
    return result
