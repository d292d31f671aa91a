"""Client of the amber-alert HTTP API, as an agency uses it (the CLI's library half).

:class:`AmberApi` speaks the same API as the phone page, with an agency token, so
the token check, the rate limit and the audit apply to it too: open or extend a case
and get a presigned upload (:meth:`AmberApi.create_upload`), post the photo to storage
(:meth:`AmberApi.post_photo`), poll its verdict (:meth:`AmberApi.status`), list and
close cases. Errors are :class:`~oneeye.errors.OneEyeError` with the API's message.

:func:`load_stack` finds a running local stack: ``oneeye up`` writes
``var/local/stack.json`` (``urls`` and the Lambdas' ``env``); the names the
environment does not set already (``AWS_ENDPOINT_URL``, table names, topic ARNs) are
taken from it. Against AWS, set those variables (or the API URL) yourself.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oneeye import aws
from oneeye.errors import OneEyeError

DEFAULT_STACK_FILE = Path("var/local/stack.json")
DEFAULT_API = "http://127.0.0.1:8080"
#: How often a rate-limited call is retried after the API's Retry-After (≤ 65 s each).
RATE_LIMIT_RETRIES = 5


def load_stack(stack_file: Path | None) -> dict[str, Any]:
    """Read stack.json and export its env for names the environment does not set.

    ``stack_file`` None: ``$ONEEYE_STACK_FILE`` or ``var/local/stack.json``, if present
    ({} otherwise). Raises OneEyeError for a named file that is missing or unreadable.
    """
    path = stack_file or Path(os.environ.get("ONEEYE_STACK_FILE") or DEFAULT_STACK_FILE)
    if not path.is_file():
        if stack_file is not None:
            raise OneEyeError(f"{path}: no such stack file (is `oneeye up` running?)")
        return {}
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OneEyeError(f"{path}: unreadable stack file ({exc})") from exc
    env = info.get("env") if isinstance(info, dict) else None
    if isinstance(env, dict):
        for key, value in env.items():
            os.environ.setdefault(str(key), str(value))
        if "AWS_ENDPOINT_URL" in env:
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # moto takes any; no profile
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

        aws.clear_cache()
    return info if isinstance(info, dict) else {}


def agency_token(token: str | None, info: dict[str, Any]) -> str | None:
    """``--token`` / ``$ONEEYE_AGENCY_TOKEN``, else the running local stack's demo token.

    ``oneeye up`` keeps that token in a 0600 file named by ``agency_token_file`` in
    stack.json (never in stack.json itself).
    """
    if token:
        return token
    path = info.get("agency_token_file")
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def api_url(api: str | None, info: dict[str, Any]) -> str:
    """The API base URL: ``api``, else the local stack's, else ``$ONEEYE_API_URL``."""
    if api:
        return api.rstrip("/")
    urls = info.get("urls") or {}
    for key in ("api", "http_api", "mobile upload page"):
        if urls.get(key):
            return str(urls[key]).rstrip("/")
    return (os.environ.get("ONEEYE_API_URL") or DEFAULT_API).rstrip("/")


def need_env(name: str) -> str:
    """An environment setting an operator command needs, or a OneEyeError saying where from."""
    value = os.environ.get(name)
    if not value:
        raise OneEyeError(f"{name} is not set: start the local stack (`oneeye up`), pass "
                          "--stack-file, or export it for your AWS stack")
    return value


class AmberApi:
    """The agency side of ``/api/uploads`` and ``/api/cases`` (bearer token auth)."""

    def __init__(self, base: str, token: str | None, *,
                 on_rate_limited: Callable[[int], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import requests

        if not token:
            raise OneEyeError("an agency token is needed: --token, ONEEYE_AGENCY_TOKEN or a "
                              "running local stack (`oneeye up`); an operator makes one with "
                              "`oneeye agency add NAME`")
        self.base = base
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self._on_rate_limited = on_rate_limited
        self._sleep = sleep

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             *, retry_rate_limit: bool = True) -> dict[str, Any]:
        """One API call; a 429 waits for its Retry-After and tries again (5 times at most)."""
        import requests

        for _ in range(RATE_LIMIT_RETRIES):
            try:
                resp = self.http.request(method, self.base + path, json=body, timeout=30)
            except requests.RequestException as exc:
                raise OneEyeError(f"cannot reach the OneEye API at {self.base}: {exc}") from exc
            if resp.status_code == 429 and retry_rate_limit:
                wait = min(65, int(resp.headers.get("Retry-After") or 10))
                if self._on_rate_limited is not None:
                    self._on_rate_limited(wait)
                self._sleep(wait)
                continue
            break
        try:
            data = resp.json()
        except ValueError:
            data = {"message": resp.text[:200]}
        if resp.status_code >= 400:
            raise OneEyeError(f"{method} {path}: {resp.status_code} "
                              f"{data.get('message') or data.get('error') or ''}".strip())
        return data if isinstance(data, dict) else {"data": data}

    def create_upload(self, form: dict[str, Any]) -> dict[str, Any]:
        """Open (no ``case_id``) or extend a case; the grant has ``url``, ``fields``,
        ``case_id``, ``upload_id`` and ``status_url``."""
        return self.call("POST", "/api/uploads", form)

    def post_photo(self, grant: dict[str, Any], data: bytes, filename: str) -> None:
        """POST the photo's bytes to storage with the grant's presigned fields."""
        import requests

        ctype = grant["fields"].get("Content-Type", "image/jpeg")
        try:
            resp = requests.post(grant["url"], data=grant["fields"],
                                 files={"file": (filename, data, ctype)}, timeout=120)
        except requests.RequestException as exc:
            raise OneEyeError(f"upload to storage failed: {exc}") from exc
        if resp.status_code >= 300:
            raise OneEyeError(f"storage refused the upload: HTTP {resp.status_code} "
                              f"{resp.text[:200]}")

    def status(self, status_url: str) -> dict[str, Any]:
        """An upload's state (``pending``/``accepted``/``rejected``) and message."""
        return self.call("GET", status_url)

    def cases(self, status: str | None = None) -> dict[str, Any]:
        """``{"agency", "cases": [...]}``, newest first; ``status`` open or closed."""
        return self.call("GET", "/api/cases" + (f"?status={status}" if status else ""))

    def close_case(self, case_id: str) -> dict[str, Any]:
        return self.call("POST", f"/api/cases/{case_id}/close")
