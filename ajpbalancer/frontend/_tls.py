"""Read a TLS frontend connection's parameters for members, as mod_ssl exports them.

Protocol (``SSL_PROTOCOL``), cipher (``SSL_CIPHER``), its secret key size
(``SSL_CIPHER_USEKEYSIZE``), the session id (``SSL_SESSION_ID``, hex) and the client's
certificate in PEM (``SSL_CLIENT_CERT``), from the pyOpenSSL connection under the
transport. Whatever cannot be read is left out rather than guessed.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL, crypto

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
