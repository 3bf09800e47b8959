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

from ajpbalancer.config import TLSOptions, endpoint_spec
from ajpbalancer.connection import TLSInfo


def _session_id(conn: SSL.Connection) -> bytes | None:
    """The session id in lower-case hex, as mod_ssl's ``SSL_SESSION_ID``.

    pyOpenSSL has no accessor for it and cryptography's binding lacks
    ``SSL_SESSION_get_id``, but it has ``i2d_SSL_SESSION``: the session's DER form
    (OpenSSL's ``SSLSessionASN1``) holds the id as its fourth field.
    """
    session = conn.get_session()
    if session is None:
        return None
    from OpenSSL._util import ffi, lib  # noqa: PLC0415 -- private, so kept to this one use

    size = lib.i2d_SSL_SESSION(session._session, ffi.NULL)
    if size <= 0:
        return None
    buf = ffi.new("unsigned char[]", size)
    lib.i2d_SSL_SESSION(session._session, ffi.new("unsigned char **", buf))
    session_id = der_session_id(bytes(ffi.buffer(buf, size)))
    return session_id.hex().encode("ascii") if session_id else None


def _der_item(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at ``pos``."""
    tag = der[pos]
    length = der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise ValueError("DER item runs past its end")
    return tag, pos, pos + length


def der_session_id(der: bytes) -> bytes | None:
    """The sessionID of a DER ``SSLSessionASN1`` (SEQUENCE { version INTEGER, sslVersion
    INTEGER, cipher OCTET STRING, sessionID OCTET STRING, ... }), or None."""
    try:
        tag, pos, _end = _der_item(der, 0)
        if tag != 0x30:  # SEQUENCE
            return None
        for expected in (0x02, 0x02, 0x04):  # version, sslVersion, cipher
            tag, _start, pos = _der_item(der, pos)
            if tag != expected:
                return None
        tag, start, end = _der_item(der, pos)
    except (IndexError, ValueError):
        return None
    return der[start:end] if tag == 0x04 else None


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
    # A server-side session cache, as mod_ssl's: TLS 1.2 clients may resume, and every
    # session has an id (SSL_SESSION_ID) that AJP members receive as ssl_session.
    context.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
    context.set_session_id(b"ajpbalancer")
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


def _pem_blocks(pem: bytes) -> list[bytes]:
    end = b"-----END CERTIFICATE-----"
    return [block + end for block in pem.split(end) if b"-----BEGIN CERTIFICATE-----" in block]


def frontend_endpoint(reactor: Any, description: str, tls: TLSOptions) -> IStreamServerEndpoint:
    """The server endpoint of a ``listen`` line; an ``ssl:`` one with the TLS policy applied.

    It listens with the line's ``backlog=``, else Apache's 511 (Twisted's default is 50).
    Twisted's ``ssl:`` parser builds ``CertificateOptions``, which makes its context once
    and caches it: hardening that context once covers every connection, and a listener
    that adopts the socket in a worker process and wraps it with the same options.
    """
    endpoint: IStreamServerEndpoint = serverFromString(
        reactor, endpoint_spec(description).endpoint()
    )
    if isinstance(endpoint, SSL4ServerEndpoint):
        options = endpoint._sslContextFactory  # private: Twisted has no public accessor
        harden_context(options.getContext(), tls)
    return endpoint
