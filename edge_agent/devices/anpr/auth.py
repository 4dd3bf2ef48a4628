"""HTTP Basic (RFC 7617) and Digest (RFC 7616) checks for camera pushes, sans-I/O.

Hikvision's HTTP host notification offers "none" or "MD5digest" authentication
(ISAPI `HttpHostNotification/httpAuthenticationMethod`); other cameras send Basic.
The listener asks this module for a challenge and for a verdict; no sockets here.

Digest: qop="auth", algorithm MD5 (what cameras implement) or SHA-256. Nonces are
stateless, `time:HMAC(secret, time)`, valid `nonce_ttl_s`; a nonce count that does not
increase is refused (replay).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable

REALM = "edge-agent"
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class Authenticator:
    def __init__(self, *, realm: str = REALM, nonce_ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.realm = realm
        self.nonce_ttl_s = nonce_ttl_s
        self.clock = clock
        self._secret = secrets.token_bytes(32)
        self._opaque = secrets.token_hex(8)
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def challenge(self, scheme: str, *, stale: bool = False) -> str:
        """The WWW-Authenticate header value for `scheme` ("basic" or "digest")."""
        if scheme == "basic":
            return f'Basic realm="{self.realm}", charset="UTF-8"'
        extra = ", stale=true" if stale else ""
        return (f'Digest realm="{self.realm}", qop="auth", algorithm=MD5, nonce="{self._nonce()}", '
                f'opaque="{self._opaque}"{extra}')

    def check(self, scheme: str, header: str, *, username: str, password: str, method: str, uri: str) -> str:
        """"" when the Authorization header proves the credentials, else the reason.

        The reason "stale" means a good answer to an expired nonce: challenge again
        with stale=true so the client retries without asking its user.
        """
        if not header:
            return "no credentials"
        given_scheme, _, rest = header.partition(" ")
        if given_scheme.lower() != scheme:
            return f"expected {scheme} authentication"
        if scheme == "basic":
            return self._check_basic(rest.strip(), username, password)
        return self._check_digest(rest, username, password, method, uri)

    # ------------------------------------------------------------------ basic

    def _check_basic(self, token: str, username: str, password: str) -> str:
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return "malformed basic credentials"
        user, sep, given = decoded.partition(":")
        if not sep:
            return "malformed basic credentials"
        ok = (hmac.compare_digest(user.encode(), username.encode())
              & hmac.compare_digest(given.encode(), password.encode()))
        return "" if ok else "wrong username or password"

    # ------------------------------------------------------------------ digest

    def _check_digest(self, rest: str, username: str, password: str, method: str, uri: str) -> str:
        params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
                  for m in _PARAM.finditer(rest)}
        for key in ("username", "realm", "nonce", "uri", "response"):
            if key not in params:
                return f"digest without {key}"
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in _HASHES:
            return f"digest algorithm {algorithm} not supported"
        if params["realm"] != self.realm:
            return "wrong realm"
        if params["uri"] != uri:
            return "digest uri does not match the request"
        if not hmac.compare_digest(params["username"].encode(), username.encode()):
            return "wrong username or password"
        h = _HASHES[algorithm]

        def hexdigest(text: str) -> str:
            return h(text.encode("utf-8")).hexdigest()

        ha1 = hexdigest(f"{username}:{self.realm}:{password}")
        ha2 = hexdigest(f"{method}:{params['uri']}")
        qop = params.get("qop")
        if qop == "auth":
            if "nc" not in params or "cnonce" not in params:
                return "digest qop=auth without nc or cnonce"
            expected = hexdigest(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        elif qop is None:
            expected = hexdigest(f"{ha1}:{params['nonce']}:{ha2}")
        else:
            return f"digest qop {qop} not supported"
        if not hmac.compare_digest(expected, params["response"].lower()):
            return "wrong username or password"
        fresh = self._nonce_fresh(params["nonce"])
        if fresh:
            return fresh
        if qop == "auth" and not self._count_increases(params["nonce"], params["nc"]):
            return "replayed nonce count"
        return ""

    def _nonce(self) -> str:
        stamp = f"{self.clock():.3f}"
        mac = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        return base64.b64encode(f"{stamp}:{mac}".encode()).decode()

    def _nonce_fresh(self, nonce: str) -> str:
        try:
            stamp, mac = base64.b64decode(nonce, validate=True).decode().split(":")
            issued = float(stamp)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return "unknown nonce"
        good = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(good, mac):
            return "unknown nonce"
        if self.clock() - issued > self.nonce_ttl_s:
            return "stale"
        return ""

    def _count_increases(self, nonce: str, nc: str) -> bool:
        try:
            count = int(nc, 16)
        except ValueError:
            return False
        with self._lock:
            if count <= self._counts.get(nonce, 0):
                return False
            if len(self._counts) > 4096:  # nonces expire anyway; keep memory bounded
                self._counts.clear()
            self._counts[nonce] = count
        return True
