"""Self-signed TLS certificates made at test time, for TLS frontends and TLS members.

`make_cert` writes a fresh EC key and a self-signed certificate (its own CA, so a client
can trust exactly it) whose subjectAltName carries the given IP addresses and DNS names.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=2)


def make_cert(
    directory: Path,
    cn: str,
    *,
    san_ip: Sequence[str] = (),
    san_dns: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``<cn>.key.pem`` and ``<cn>.cert.pem`` in ``directory``; return their paths.

    The certificate is self-signed, valid from a day ago for two days, and marked as a CA
    so that loading it as the only trust anchor verifies a chain of one.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in san_ip]
    alt_names += [x509.DNSName(dns) for dns in san_dns]
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - VALIDITY / 2)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    stem = cn.replace("/", "_")
    key_path = directory / f"{stem}.key.pem"
    cert_path = directory / f"{stem}.cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
