"""The bank's customer API: ``GET {CUSTOMER_API_URL}/customers/{id}`` with ``x-api-key``.

Plain ``urllib`` on purpose: the Lambda Python runtime ships without
``requests``, and this is one GET. Each attempt has a timeout; connection
errors, timeouts, 429 and 5xx are retried with exponential backoff; 404 is an
answer (:class:`CustomerNotFound`), not a failure, and is never retried; any
other 4xx (a wrong key) is not retried either, since the next try would fail
the same way — it becomes :class:`CustomerApiUnavailable` so the desk still
gets a degraded card.

In AWS the key lives in Secrets Manager: the template passes the secret's name
as ``CUSTOMER_API_KEY_SECRET`` and the key is read once per container.
The local stack sets ``CUSTOMER_API_KEY`` directly. The settings are
:class:`oneeye.cloud.settings.EnrichSettings`; :func:`customer_api` builds the
client once per container.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from oneeye.cloud.dal import store
from oneeye.cloud.settings import EnrichSettings
from oneeye.errors import CustomerApiUnavailable, CustomerNotFound, EventError
from oneeye.events import loads

log = logging.getLogger(__name__)

_RETRYABLE = {429, 500, 502, 503, 504}
_secret_cache: dict[str, str] = {}


@dataclass(frozen=True)
class CustomerApi:
    base_url: str
    api_key: str | None = None
    timeout_s: float = 2.0
    attempts: int = 3
    backoff_s: float = 0.2

    def get(self, customer_id: str) -> dict[str, Any]:
        url = f"{self.base_url.rstrip('/')}/customers/{urllib.parse.quote(customer_id, safe='')}"
        headers = {"Accept": "application/json", "User-Agent": "oneeye-enrich/1"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        last = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            try:
                req = urllib.request.Request(url, headers=headers, method="GET")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    body = loads(resp.read(1_000_000))
                if not isinstance(body, dict):
                    raise CustomerApiUnavailable(f"customer API returned {type(body).__name__}")
                return body
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise CustomerNotFound(f"customer {customer_id} not found") from exc
                last = f"HTTP {exc.code}"
                if exc.code not in _RETRYABLE:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except EventError as exc:
                last = f"invalid JSON ({exc})"
            if attempt < self.attempts:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        log.warning("customer API unavailable for %s after %d attempt(s): %s",
                    customer_id, attempt, last)
        raise CustomerApiUnavailable(f"customer API unavailable ({last})")


def _text(value: object) -> str | None:
    """A scalar as text (numbers and booleans stringified); anything else dropped."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return None


def _capped(limit: int) -> Any:
    def clean(value: object) -> str | None:
        text = _text(value)
        return None if text is None else (text if len(text) <= limit else text[:limit - 1] + "…")
    return BeforeValidator(clean)


def _web_url(value: object) -> str | None:
    """An absolute http(s) URL the desk may put in ``<img src>``; anything else dropped."""
    text = _text(value)
    if text is None or len(text) > 2000 or not text.startswith(("https://", "http://")) or \
            any(c.isspace() or c in "\"'<>\\" for c in text):
        return None
    return text


class CustomerCard(BaseModel):
    """What the desk shows of a customer record: the only shape the cloud sends on.

    The bank's API is outside OneEye: every field is untrusted. Known fields are kept
    as text capped in length (numbers and booleans stringified, other types dropped),
    ``photo_url`` only as an http(s) URL, unknown fields dropped; ``id`` is always ours.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: Annotated[str | None, _capped(200)] = None
    segment: Annotated[str | None, _capped(60)] = None
    notes: Annotated[str | None, _capped(1000)] = None
    since: Annotated[str | None, _capped(40)] = None
    photo_url: Annotated[str | None, BeforeValidator(_web_url)] = Field(None, max_length=2000)

    @classmethod
    def from_record(cls, record: dict[str, Any], customer_id: str) -> CustomerCard:
        fields = {k: record.get(k) for k in cls.model_fields if k != "id"}
        return cls(id=customer_id, **fields)


def customer_api(settings: EnrichSettings) -> CustomerApi | None:
    """The customer API client of these settings, or None when no URL is configured.

    Called once per container; without a URL every arrival still reaches the desk,
    degraded (id only), and that is said once here rather than per event.
    """
    if not settings.customer_api_url:
        log.warning("CUSTOMER_API_URL is not set; desk cards will carry the id only")
        return None
    return CustomerApi(
        base_url=settings.customer_api_url,
        api_key=api_key(settings),
        timeout_s=settings.customer_api_timeout_s,
        attempts=settings.customer_api_attempts,
    )


def api_key(settings: EnrichSettings) -> str | None:
    """``CUSTOMER_API_KEY``, else the Secrets Manager secret's value (read once)."""
    if settings.customer_api_key is not None:
        return settings.customer_api_key.get_secret_value()
    secret = settings.customer_api_key_secret
    if not secret:
        return None
    if secret not in _secret_cache:
        value = store.secret(secret)
        # A JSON secret {"api_key": "..."} or the bare key, as people store either.
        try:
            parsed = json.loads(value)
            value = parsed.get("api_key", value) if isinstance(parsed, dict) else value
        except json.JSONDecodeError:
            pass
        _secret_cache[secret] = str(value)
    return _secret_cache[secret]
