"""Who may upload: agency tokens, a per-token rate limit, and the audit trail.

Tokens. ``oneeye agency add NAME`` makes a random bearer token
(``oeat_`` + 256 random bits), prints it once, and stores only its SHA-256 in
``AGENCIES_TABLE`` (:mod:`oneeye.cloud.dal.agency_tokens`; with ``time_zone``, the
IANA zone its alerts' times are given in, copied onto each new case at upload). A stolen table
therefore gives no usable token; a lost token is revoked and a new one added. The
token is unguessable, so a plain hash (no salt or slow KDF) is enough: there is
nothing to brute-force.

Rate limit. A fixed one-minute window per token: an atomic ``ADD`` on the item
``rate:{token_sha256[:16]}:{minute}`` of the state table (``IDEMPOTENCY_TABLE``, its
``rate`` namespace: :class:`oneeye.cloud.dal.state.RateWindows`) under the condition
``n < limit``, with ``expires_at`` (that table's TTL attribute) a few minutes later, so
counters clean themselves up. No extra table, and it works on moto.
``UPLOAD_RATE_PER_MIN`` (default 30) sets the limit.

Audit. One JSON object per action under ``audit/{YYYY-MM-DD}/{audit_id}.json``
(:func:`oneeye.cloud.dal.keys.audit`)
in ``ONEEYE_BUCKET`` (outside ``uploads/``, so the indexer never sees it):
who (agency and the first 12 hex digits of the token hash — enough to tell
tokens apart, useless to an attacker), what (``upload_requested``,
``case_closed``), which case and upload, from where, when. S3 rather than a
table: write-once objects fit an audit trail (Object Lock can make them
immutable in AWS), and reading them is rare. Failed authentications are
logged, not audited: an anonymous caller must not be able to fill the bucket.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from dataclasses import replace
from typing import Any

from oneeye.alerting import check_time_zone
from oneeye.cloud.api import Request
from oneeye.cloud.dal import keys
from oneeye.cloud.dal.agency_tokens import Agency, TokenTable
from oneeye.cloud.dal.state import RateWindows
from oneeye.cloud.dal.store import Bucket
from oneeye.errors import ApiError, OneEyeError
from oneeye.ids import new_id
from oneeye.types import utc_now

log = logging.getLogger(__name__)

TOKEN_PREFIX = "oeat_"
_TOKEN = re.compile(r"^oeat_[A-Za-z0-9_-]{40,60}$")
#: Agency names go into S3 object metadata (ASCII only) and audit records.
_AGENCY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .,&()'/_-]{0,79}$")
DEFAULT_RATE_PER_MIN = 30


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_agency_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not _AGENCY.match(name):
        raise OneEyeError(f"invalid agency name {name!r}: 1–80 ASCII letters, digits, spaces "
                          "and .,&()'/_- (it is stored in S3 object metadata)")
    return name


class Agencies:
    """The agencies table: token hash → agency."""

    def __init__(self, table: str, *, dynamodb: Any = None) -> None:
        self.table = table
        #: ``dynamodb``: a client of its own (the local S3 stand-in asks its own server).
        self._tokens = TokenTable(table, dynamodb=dynamodb)

    def add(self, name: str, *, time_zone: str = "UTC") -> tuple[str, Agency]:
        """Create a token for ``name``; returns (token, agency). The token is not stored.
        ``time_zone``: the agency's IANA zone (OneEyeError naming the rule otherwise)."""
        agency = check_agency_name(name)
        try:
            zone = check_time_zone(time_zone)
        except ValueError as exc:
            raise OneEyeError(str(exc)) from None
        token = new_token()
        digest = token_sha256(token)
        now = utc_now()
        record = Agency(name=agency, token_sha256=digest, created_at=now, time_zone=zone)
        self._tokens.put_new(record)
        log.info("agency token %s created for %s (%s)", digest[:12], agency, zone)
        return token, record

    def lookup(self, token: str) -> Agency | None:
        """The agency of a valid, unrevoked token, else None."""
        if not _TOKEN.match(token):
            return None
        record = self._tokens.get(token_sha256(token))
        return None if record is None or record.revoked else record

    def revoked(self, token_sha256: str) -> bool:
        """True unless ``token_sha256`` names a known, unrevoked token (read consistently)."""
        record = self._tokens.get(token_sha256)
        return record is None or record.revoked

    def authenticate(self, req: Request) -> Agency:
        """The caller's agency, or 401 (missing, malformed, unknown or revoked token)."""
        token = req.bearer_token()
        if token is None:
            raise ApiError(401, "unauthorized",
                           "missing agency token: send 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": 'Bearer realm="oneeye"'})
        agency = self.lookup(token)
        if agency is None:
            log.warning("rejected agency token from %s (%s)", req.source_ip or "?",
                        req.user_agent[:60])
            raise ApiError(401, "unauthorized", "agency token not recognised (or revoked)",
                           headers={"WWW-Authenticate": 'Bearer realm="oneeye", '
                                                        'error="invalid_token"'})
        return agency

    def list(self) -> list[Agency]:
        return sorted(self._tokens.scan(), key=lambda a: (a.name, a.created_at))

    def revoke(self, token_id: str) -> Agency:
        """Revoke the one token whose hash starts with ``token_id`` (≥ 8 hex digits)."""
        if not re.fullmatch(r"[0-9a-f]{8,64}", token_id):
            raise OneEyeError("give at least 8 hex digits of the token id (see 'agency list')")
        found = [a for a in self.list() if a.token_sha256.startswith(token_id)]
        if len(found) != 1:
            raise OneEyeError(f"{len(found)} tokens match {token_id!r}; need exactly one")
        self._tokens.set_revoked(found[0].token_sha256)
        return replace(found[0], revoked=True)


class RateLimiter:
    """At most ``per_minute`` hits per key per calendar minute (fixed window)."""

    def __init__(self, table: str, per_minute: int = DEFAULT_RATE_PER_MIN) -> None:
        self.table = table
        self.per_minute = per_minute

    def hit(self, key: str, *, now: float | None = None) -> int:
        """Count one hit; returns the count, or raises 429 with Retry-After."""
        now_s = time.time() if now is None else now
        window = int(now_s // 60)
        count = RateWindows(self.table).hit(key[:16], window=window, limit=self.per_minute,
                                            expires_at=(window + 5) * 60)
        if count is None:
            retry = max(1, int((window + 1) * 60 - now_s) + 1)
            raise ApiError(429, "rate_limited",
                           f"too many uploads: at most {self.per_minute} per minute per token; "
                           f"try again in {retry} s", headers={"Retry-After": str(retry)})
        return count


class Audit:
    """Write-once audit records in the bucket under ``audit/``."""

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket

    def record(self, action: str, agency: Agency | None, req: Request | None = None,
               **fields: Any) -> dict[str, Any]:
        """Write one record; ``agency`` is None when nobody could be named (a refused upload)."""
        at = utc_now()
        entry = {"audit_id": new_id(), "at": at, "action": action,
                 "agency": agency.name if agency else None,
                 "token_id": agency.token_id if agency else None,
                 "source_ip": req.source_ip if req else None,
                 "user_agent": req.user_agent if req else None,
                 "request_id": req.request_id if req else None,
                 **fields}
        self.bucket.put_json(keys.audit(at[:10], entry["audit_id"]), entry)
        log.info("audit: %s by %s (%s) %s", action, entry["agency"], entry["token_id"],
                 {k: v for k, v in fields.items() if k in ("case_id", "upload_id")})
        return entry

    def entries(self, day: str) -> list[dict[str, Any]]:
        """Every record of one UTC day (``YYYY-MM-DD``), oldest first."""
        out = [self.bucket.get_json(k) for k in sorted(self.bucket.keys(keys.audit_day(day)))]
        return [e for e in out if isinstance(e, dict)]
