"""Who is signed in, and how the console checks it.

- Passwords are kept only as argon2id hashes (argon2-cffi's defaults); a hash made with
  older parameters is renewed at the next sign-in.
- The session is a cookie signed with the session secret (itsdangerous, HMAC-SHA1 over a
  key derived from the secret), HttpOnly, SameSite=Lax, Secure when configured, valid for
  `session_hours`. It holds the user's name, the session's CSRF token and a fingerprint of
  the user's password hash, so changing a password ends the user's other sessions. Before
  sign-in it holds only a CSRF token, for the sign-in form.
- Every POST carries the session's CSRF token in its form (`csrf_token`) or in the
  `X-CSRF-Token` header; one without it, or with another, is refused (403).
- Sign-in attempts are limited per account (the store's failed_logins / locked_until: after
  `max_failed_logins` failures in a row the account is locked for `lockout_minutes`) and per
  client address (at most `address_failures` failures in `address_window_minutes`). A name
  that is no user's is answered as a user's would be (its failures are counted, and lock it,
  in this process; its password is checked against a dummy hash), so sign-in does not tell
  who has an account. A lock stops sign-ins, not the sessions already signed in (anyone may
  lock an account by failing on purpose).
- Signing out ends the session: its cookie, replayed, signs in no one (the serving
  process remembers the sessions signed out of until their cookies would expire).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "tier2_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MIN_SECRET_BYTES = 32
MIN_PASSWORD = 12

_hasher = PasswordHasher()
# verified against when a user does not exist, so the answer takes as long either way
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_problem(password: str) -> str | None:
    """What is wrong with a new password (None: nothing)."""
    if len(password) < MIN_PASSWORD:
        return f"a password of at least {MIN_PASSWORD} characters"
    if len(password) > 1024:
        return "a password of at most 1024 characters"
    return None


def check_password(stored: str | None, given: str) -> tuple[bool, str | None]:
    """Whether `given` matches the stored hash, and a renewed hash when the stored one was
    made with older parameters."""
    try:
        _hasher.verify(stored or _DUMMY, given)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, hash_password(given) if _hasher.check_needs_rehash(stored) else None


def fingerprint(password_hash: str) -> str:
    """Names a password hash in the session without holding it."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SessionData:
    csrf: str
    user: str | None = None
    key: str | None = None  # the fingerprint of the user's password hash


class Sessions:
    """The signed session cookie's contents."""

    def __init__(self, secret: str, max_age_seconds: float, clock: Any = time.monotonic) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the session secret must be at least {MIN_SECRET_BYTES} bytes")
        self._codec = URLSafeTimedSerializer(secret, salt="tier2-console-session")
        self.max_age = max_age_seconds
        self.clock = clock
        # the sessions signed out of (by their token), until their cookies would expire
        self._ended: dict[str, float] = {}
        self._lock = threading.Lock()

    def end(self, data: SessionData) -> None:
        """The session is over: its cookie, replayed, signs in no one (in this process)."""
        with self._lock:
            now = float(self.clock())
            if len(self._ended) >= 100_000:  # bounded: forget those whose cookies expired
                self._ended = {k: v for k, v in self._ended.items() if v > now}
            self._ended[data.csrf] = now + self.max_age

    def _over(self, token: str) -> bool:
        with self._lock:
            until = self._ended.get(token)
            if until is None:
                return False
            if until <= float(self.clock()):
                del self._ended[token]
                return False
            return True

    def dump(self, data: SessionData) -> str:
        return self._codec.dumps({"c": data.csrf, "u": data.user, "k": data.key})

    def load(self, cookie: str | None) -> SessionData | None:
        if not cookie or len(cookie) > 4096:
            return None
        try:
            raw: Any = self._codec.loads(cookie, max_age=int(self.max_age))
        except BadSignature:  # (expired: SignatureExpired is one)
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("c"), str):
            return None
        if self._over(raw["c"]):
            return None
        user, key = raw.get("u"), raw.get("k")
        return SessionData(
            raw["c"], user if isinstance(user, str) else None, key if isinstance(key, str) else None
        )

    @staticmethod
    def fresh(user: str | None = None, key: str | None = None) -> SessionData:
        return SessionData(secrets.token_urlsafe(32), user, key)


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class UnknownNames:
    """Failed sign-ins of names that are no user's, counted as an account's are (in this
    process): an unknown name is locked after as many failures as a user would be, so the
    answers to sign-ins do not tell whether a user exists."""

    def __init__(self) -> None:
        self._found: dict[str, tuple[int, datetime | None]] = {}
        self._lock = threading.Lock()

    def locked_until(self, name: str, now: datetime) -> datetime | None:
        with self._lock:
            _, until = self._found.get(name, (0, None))
        return until if until is not None and until > now else None

    def failed(self, name: str, now: datetime, *, limit: int, lock_until: datetime) -> bool:
        """One more failure for the name; whether it is locked now (as `login_failed`)."""
        with self._lock:
            if len(self._found) >= 100_000:  # bounded: forget the names not locked now
                self._found = {
                    k: v for k, v in self._found.items() if v[1] is not None and v[1] > now
                }
            count, until = self._found.get(name, (0, None))
            if count + 1 >= limit:
                self._found[name] = (0, lock_until)
                return True
            self._found[name] = (count + 1, until)
            return False


class AddressLimiter:
    """Failed sign-ins per client address in a sliding window (in this process)."""

    def __init__(self, limit: int, window_seconds: float, clock: Any = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        found = self._failures.setdefault(address, deque())
        while found and found[0] <= now - self.window:
            found.popleft()
        return found

    def wait(self, address: str) -> float:
        """Seconds until this address may try again (0: now)."""
        with self._lock:
            now = float(self.clock())
            found = self._recent(address, now)
            if len(found) < self.limit:
                return 0.0
            return max(0.0, float(found[0]) + self.window - now)

    def failed(self, address: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(address, now).append(now)
            if len(self._failures) > 100_000:  # bounded: forget the addresses not seen lately
                for key in [k for k, v in self._failures.items() if not v][:50_000]:
                    del self._failures[key]
