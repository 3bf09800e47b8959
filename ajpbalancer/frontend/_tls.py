"""TLS on frontends: the policy of ``ssl:`` listeners, and what members learn of a connection.

``frontend_endpoint`` builds a ``listen`` line's endpoint and hardens an ``ssl:`` one
(TLS 1.2 minimum, forward-secret AEAD ciphers, optional client certificates).

For members: protocol (``SSL_PROTOCOL``), cipher (``SSL_CIPHER``), its secret key size
(``SSL_CIPHER_USEKEYSIZE``), the session id (``SSL_SESSION_ID``, hex) and the client's
certificate in PEM (``SSL_CLIENT_CERT``), from the pyOpenSSL connection under the
transport. Whatever cannot be read is left out rather than guessed.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL, crypto
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint

from ajpbalancer.config import TLSOptions
from ajpbalancer.connection import TLSInfo


def _session_id(conn: SSL.Connection) -> bytes | None:
    session = conn.get_session()
    if session is None:
        return None
    # pyOpenSSL has no accessor for the id; its cffi binding of OpenSSL does.
    from OpenSSL._util import ffi, lib  # noqa: PLC0415 -- private, so kept to this one use

    length = ffi.new("unsigned int *")
    raw = lib.SSL_SESSION_get_id(session._session, length)
    if raw == ffi.NULL or not length[0]:
        return None
    return bytes(ffi.buffer(raw, length[0])).hex().upper().encode("ascii")


def tls_info(transport: Any) -> TLSInfo | None:
    """The TLS parameters of ``transport``, or None when it is not TLS after all."""
    get_handle = getattr(transport, "getHandle", None)
    conn = get_handle() if get_handle is not None else None
    if not isinstance(conn, SSL.Connection):
        return None
    cipher = conn.get_cipher_name()
    if cipher is None:
        return None
    cert = conn.get_peer_certificate()
    try:
        session_id = _session_id(conn)
    except (AttributeError, TypeError):
        session_id = None
    return TLSInfo(
        protocol=(conn.get_protocol_version_name() or "").encode("ascii"),
        cipher=cipher.encode("ascii"),
        key_size=conn.get_cipher_bits() or 0,
        session_id=session_id,
        client_cert=None if cert is None else crypto.dump_certificate(crypto.FILETYPE_PEM, cert),
    )


# Forward-secret AEAD suites only, in Twisted's default order (so the suite a client gets is
# the one it got before): no CBC, no static RSA key exchange, no anonymous or DSS suites.
# TLS 1.3 suites are OpenSSL's (all AEAD) and are not affected by this list.
FRONTEND_CIPHERS = b"ECDH+AESGCM:ECDH+CHACHA20:DH+AESGCM:DH+CHACHA20:!aNULL:!MD5:!DSS"
MINIMUM_VERSION = SSL.TLS1_2_VERSION


def _accept_verified(
    _conn: SSL.Connection, _cert: crypto.X509, _errno: int, _depth: int, ok: int
) -> bool:
    return bool(ok)


def harden_context(context: SSL.Context, tls: TLSOptions) -> None:
    """Apply the frontend's TLS policy to a server ``context`` in place.

    TLS 1.2 at least (whatever ``sslmethod=`` the endpoint names), the cipher list above,
    and client certificates per ``SSLVerifyClient``: ``optional`` asks for one and
    verifies it when sent, ``require`` refuses a handshake without a valid one; either way
    against ``SSLCACertificateFile``, whose names are sent as the acceptable issuers.
    """
    context.set_min_proto_version(MINIMUM_VERSION)
    context.set_cipher_list(FRONTEND_CIPHERS)
    if tls.verify_client == "none" or tls.ca_certificate_file is None:
        return
    context.load_verify_locations(tls.ca_certificate_file)
    with open(tls.ca_certificate_file, "rb") as f:
        pem = f.read()
    issuers = [
        crypto.load_certificate(crypto.FILETYPE_PEM, block).get_subject()
        for block in _pem_blocks(pem)
    ]
    context.set_client_ca_list(issuers)
    mode = SSL.VERIFY_PEER
    if tls.verify_client == "require":
        mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    context.set_verify(mode, _accept_verified)
    # Resuming a session of a verified client needs a session id context.
    context.set_session_id(b"ajpbalancer")


def _pem_blocks(pem: bytes) -> list[bytes]:
    end = b"-----END CERTIFICATE-----"
    return [block + end for block in pem.split(end) if b"-----BEGIN CERTIFICATE-----" in block]


def frontend_endpoint(reactor: Any, description: str, tls: TLSOptions) -> IStreamServerEndpoint:
    """The server endpoint of a ``listen`` line; an ``ssl:`` one with the TLS policy applied.

    Twisted's ``ssl:`` parser builds ``CertificateOptions``, which makes its context once
    and caches it: hardening that context once covers every connection, and a listener
    that adopts the socket in a worker process and wraps it with the same options.
    """
    endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    if isinstance(endpoint, SSL4ServerEndpoint):
        options = endpoint._sslContextFactory  # private: Twisted has no public accessor
        harden_context(options.getContext(), tls)
    return endpoint
