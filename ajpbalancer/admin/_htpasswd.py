"""``admin_users``: an Apache htpasswd file, and the credentials checker that enforces it.

Lines are ``user:hash`` (blank lines and ``#`` comments are skipped). Two hashes are
accepted, as ``htpasswd -B`` and ``htpasswd -s`` write them: bcrypt (``$2y$``, ``$2b$``,
``$2a$``) and ``{SHA}`` (base64 of the password's SHA-1). Anything else (``$apr1$`` MD5,
crypt, plain text) is refused when the file is read, as is a duplicate user or a file
without users: the file is read once, at start, before privileges are dropped.

bcrypt is slow on purpose, so :class:`HtpasswdChecker` runs it through an injected
``verify`` (in a thread in the running proxy) and remembers a password once it has been
verified (an HMAC of it under a key made at start, never the password itself), so that a
Prometheus scraping every few seconds costs one bcrypt check, not one per scrape. An
unknown user costs a bcrypt check too, so that timing does not tell which users exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from ajpbalancer.errors import AJPBalancerError

_BCRYPT = re.compile(rb"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
_SHA = re.compile(rb"\{SHA\}[A-Za-z0-9+/]{27}=")

Verify = Callable[[bytes, bytes], "Deferred[bool]"]
"""``verify(password, bcrypt_hash)``: whether the password matches, eventually."""


class AdminUsersError(AJPBalancerError):
    """The ``admin_users`` file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Htpasswd:
    """The users of an htpasswd file and their hashes (bcrypt or ``{SHA}``)."""

    path: str
    users: dict[bytes, bytes]

    @classmethod
    def parse(cls, data: bytes, path: str) -> Htpasswd:
        users: dict[bytes, bytes] = {}
        for number, raw in enumerate(data.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            user, sep, hashed = line.partition(b":")
            where = f"{path}:{number}"
            if not sep or not user:
                raise AdminUsersError(f"{where}: expected user:hash")
            name = user.decode("utf-8", "replace")
            if user in users:
                raise AdminUsersError(f"{where}: user {name!r} appears twice")
            if _BCRYPT.fullmatch(hashed) is None and _SHA.fullmatch(hashed) is None:
                kind = " ($apr1$, Apache's MD5)" if hashed.startswith(b"$apr1$") else ""
                raise AdminUsersError(
                    f"{where}: user {name!r}: unsupported password hash{kind} "
                    "(use bcrypt, htpasswd -B, or SHA-1, htpasswd -s)"
                )
            users[user] = hashed
        if not users:
            raise AdminUsersError(f"{path}: no users")
        return cls(path, users)

    @classmethod
    def load(cls, path: str) -> Htpasswd:
        """Read and check ``path`` (:class:`AdminUsersError` if it cannot be used)."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise AdminUsersError(f"cannot read {path!r}: {e.strerror}") from None
        return cls.parse(data, path)


def sha_matches(password: bytes, hashed: bytes) -> bool:
    """Whether ``password`` matches an htpasswd ``{SHA}`` hash (compared in constant time)."""
    digest = base64.b64encode(hashlib.sha1(password).digest())
    return hmac.compare_digest(b"{SHA}" + digest, hashed)


@implementer(ICredentialsChecker)
class HtpasswdChecker:
    """Checks HTTP Basic credentials against an :class:`Htpasswd` (see the module docstring)."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, users: Htpasswd, verify: Verify) -> None:
        self._users = users
        self._verify = verify
        self._key = os.urandom(32)
        self._verified: dict[bytes, bytes] = {}
        self._decoy = next((h for h in users.users.values() if h.startswith(b"$2")), None)

    def _mark(self, password: bytes) -> bytes:
        return hmac.new(self._key, password, hashlib.sha256).digest()

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[bytes | tuple[()]]:
        user = credentials.username
        password = credentials.password
        hashed = self._users.users.get(user)
        if hashed is None:
            if self._decoy is None:
                return fail(UnauthorizedLogin())
            return self._verify(password, self._decoy).addCallback(_refuse)
        if hashed.startswith(b"{SHA}"):
            if sha_matches(password, hashed):
                return succeed(user)
            return fail(UnauthorizedLogin())
        known = self._verified.get(user)
        if known is not None and hmac.compare_digest(known, self._mark(password)):
            return succeed(user)

        def checked(ok: bool) -> bytes | tuple[()]:
            if not ok:
                raise UnauthorizedLogin()
            self._verified[user] = self._mark(password)
            return user

        return self._verify(password, hashed).addCallback(checked)


def _refuse(_: bool) -> bytes | tuple[()]:
    raise UnauthorizedLogin()


def bcrypt_matches(password: bytes, hashed: bytes) -> bool:
    """Whether ``password`` matches a bcrypt hash (``$2y$`` too); slow on purpose.

    bcrypt reads at most 72 bytes of a password; a longer one never matches here rather
    than matching on its first 72 bytes.
    """
    if len(password) > 72:
        return False
    return bcrypt.checkpw(password, hashed)
