"""What a request knows of the client connection it came in on (values, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What a TLS frontend connection tells members (mod_ssl's ``SSL_*`` variables)."""

    protocol: bytes
    cipher: bytes
    key_size: int
    session_id: bytes | None
    client_cert: bytes | None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The client connection: addresses and, on a TLS frontend, its TLS parameters."""

    ip: bytes
    port: int
    local_ip: bytes
    local_port: int
    tls: TLSInfo | None
