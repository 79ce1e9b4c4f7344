"""API keys, per-caller rate limits and the per-address limit on failed authentication.

A key reads `srgan_<id>_<secret>`. Only the SHA-256 of the secret is stored (the secret
is 192 random bits, so a fast hash is enough: nothing to brute-force), next to the id,
a unique name and the time it was revoked, if it was. `srgan serve keys add|list|revoke`
and the server share the table, so a revocation takes effect on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass

from srgan.errors import BadInputError
from srgan.serve.database import Database
from srgan.serve.settings import RateLimit

_KEY_PATTERN = re.compile(r"^srgan_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")
_ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Revocation:
    key: ApiKey
    matched_by: str  # "id" or "name"
    already_revoked: bool


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def add(self, name: str) -> tuple[ApiKey, str]:
        """A new key: its record and the key text, which is shown once and not stored."""
        if not _NAME_PATTERN.match(name):
            raise BadInputError(f"key name {name!r}: use 1-64 letters, digits, spaces and . _ @ -")
        if _ID_PATTERN.match(name):
            raise BadInputError(
                f"key name {name!r} looks like a key id (12 hex digits): choose another name"
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
        record = ApiKey(key_id, name, time.time(), None)
        try:
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO api_keys (id, name, secret_sha256, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (key_id, name, _digest(secret), record.created_at),
                )
        except sqlite3.IntegrityError:
            raise BadInputError(
                f"a key named {name!r} exists already (names are unique): choose another name"
            ) from None
        return record, f"srgan_{key_id}_{secret}"

    def list_keys(self) -> list[ApiKey]:
        rows = self.db.connection().execute(
            "SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
        return [ApiKey(*row) for row in rows]

    def revoke(self, id_or_name: str) -> Revocation:
        """Revoke the one key whose id or name is `id_or_name`; a text that is the id of
        one key and the name of another is refused as ambiguous."""
        with self.db.transaction() as db:
            rows = db.execute(
                "SELECT id, name, created_at, revoked_at FROM api_keys WHERE id = ? OR name = ?",
                (id_or_name, id_or_name),
            ).fetchall()
            if not rows:
                raise BadInputError(
                    f"no key with id or name {id_or_name!r} (see `srgan serve keys list`)"
                )
            if len(rows) > 1:
                named = ", ".join(f"{row['id']} ({row['name']!r})" for row in rows)
                raise BadInputError(
                    f"{id_or_name!r} names more than one key: {named}; revoke by the id"
                )
            key = ApiKey(*rows[0])
            if key.active:
                db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (time.time(), key.id))
                key = ApiKey(
                    *db.execute(
                        "SELECT id, name, created_at, revoked_at FROM api_keys WHERE id = ?",
                        (key.id,),
                    ).fetchone()
                )
                already = False
            else:
                already = True
        return Revocation(key, "id" if key.id == id_or_name else "name", already)

    def verify(self, text: str) -> ApiKey | None:
        """The active key `text` stands for, or None."""
        match = _KEY_PATTERN.match(text.strip())
        if match is None:
            return None
        key_id, secret = match.groups()
        row = (
            self.db.connection()
            .execute(
                "SELECT id, name, created_at, revoked_at, secret_sha256 FROM api_keys WHERE id = ?",
                (key_id,),
            )
            .fetchone()
        )
        if row is None or not hmac.compare_digest(row["secret_sha256"], _digest(secret)):
            return None
        key = ApiKey(row["id"], row["name"], row["created_at"], row["revoked_at"])
        return key if key.active else None


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller: `burst` at once, `per_second` refilled."""

    MAX_CALLERS = 10_000  # beyond this, idle (full) buckets are dropped

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.limit.per_second > 0

    def take(self, caller: str) -> float | None:
        """Spend one token; None if allowed, else the seconds until one is back."""
        return self._check(caller, spend=True)

    def peek(self, caller: str) -> float | None:
        """As `take`, but nothing is spent: None while `caller` has a token left."""
        return self._check(caller, spend=False)

    def _check(self, caller: str, spend: bool) -> float | None:
        if not self.enabled:
            return None
        now = time.monotonic()
        rate, burst = self.limit.per_second, float(self.limit.burst)
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                if not spend:
                    return None
                if len(self._buckets) >= self.MAX_CALLERS:
                    self._drop_idle(now)
                bucket = self._buckets[caller] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                if spend:
                    bucket.tokens -= 1
                return None
            return (1 - bucket.tokens) / rate

    def _drop_idle(self, now: float) -> None:
        rate, burst = self.limit.per_second, self.limit.burst
        for caller, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * rate >= burst:
                del self._buckets[caller]


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


@dataclass(frozen=True)
class Caller:
    """Who sent a request: their key's id (None without a key) and whose bucket paid."""

    key_id: str | None
    identity: str


class Refused(Exception):
    """A request turned away before its body is read: 401 or 429."""

    def __init__(self, status: int, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


class Gatekeeper:
    """The key check, then the caller's rate limit, from the request's headers alone.

    Each 401 spends a token of the client address's `failures` bucket. An address whose
    bucket is empty gets 429 for every request that needs a key, before any key is
    looked at, a good one included: otherwise a guesser would still learn which guess
    was right."""

    def __init__(
        self,
        keys: KeyStore,
        limiter: RateLimiter,
        failures: RateLimiter,
        keys_required: bool,
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.failures = failures
        self.keys_required = keys_required

    def admit(self, key_text: str | None, address: str) -> Caller:
        """A key that is given must be valid; without one, only when keys are optional."""
        if key_text or self.keys_required:
            blocked = self.failures.peek(address)
            if blocked is not None:
                raise Refused(
                    429,
                    "too many failed authentications from this address; retry later",
                    {"Retry-After": retry_after_header(blocked)},
                )
        key = self.keys.verify(key_text) if key_text else None
        if key_text and key is None:
            self.failures.take(address)
            raise _unauthorized("unknown or revoked API key")
        if key is None and self.keys_required:
            self.failures.take(address)
            raise _unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
        caller = Caller(key.id if key else None, f"key:{key.id}" if key else f"address:{address}")
        wait = self.limiter.take(caller.identity)
        if wait is not None:
            limit = self.limiter.limit
            raise Refused(
                429,
                f"rate limit reached ({limit.per_second:g} requests/s, bursts of {limit.burst});"
                " retry later",
                {"Retry-After": retry_after_header(wait)},
            )
        return caller


def _unauthorized(detail: str) -> Refused:
    return Refused(401, detail, {"WWW-Authenticate": "Bearer"})
