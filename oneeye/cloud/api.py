"""HTTP API plumbing of the agency-facing Lambdas (upload_url, upload_status, cases).

API Gateway HttpApi invokes them with payload format 2.0 (header names lower
case, ``pathParameters``, ``requestContext.http``, a body that may be base64)
and reads back ``{statusCode, headers, body}``. The local stack's HTTP API
builds the same events, so this module is the one place that knows the shape.

Every answer is JSON with ``Cache-Control: no-store`` (status polling must never
see a cached "pending"). A client mistake is an :class:`ApiError` with a status,
a short machine code and a sentence for people; anything unexpected is logged
with the request id and answered 500 without internals.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oneeye.errors import ApiError, ConfigError, EventError
from oneeye.events import loads

log = logging.getLogger(__name__)

#: Bodies of these endpoints are small forms; anything bigger is a mistake or an attack.
MAX_BODY_BYTES = 16 * 1024

Response = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP API request as a route sees it (API Gateway payload 2.0, or 1.0's fields)."""

    method: str
    path: str
    #: The HTTP API's ``routeKey``, e.g. ``"POST /api/uploads"``.
    route_key: str
    #: Header names lower-cased.
    headers: dict[str, str]
    path_params: dict[str, str]
    query: dict[str, str]
    body: bytes
    source_ip: str = ""
    user_agent: str = ""
    request_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: Any) -> Request:
        if not isinstance(event, dict):
            raise ApiError(400, "bad_event", "not an HTTP API event")
        ctx = event.get("requestContext") or {}
        http = ctx.get("http") or {}
        raw = event.get("body") or ""
        try:
            body = (base64.b64decode(raw, validate=True) if event.get("isBase64Encoded")
                    else str(raw).encode())
        except (binascii.Error, ValueError) as exc:
            raise ApiError(400, "bad_body", "request body is not valid base64") from exc
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        return cls(
            method=str(http.get("method") or event.get("httpMethod") or "GET").upper(),
            path=str(event.get("rawPath") or http.get("path") or "/"),
            route_key=str(event.get("routeKey") or ctx.get("routeKey") or ""),
            headers=headers,
            path_params={str(k): str(v) for k, v in (event.get("pathParameters") or {}).items()},
            query={str(k): str(v)
                   for k, v in (event.get("queryStringParameters") or {}).items()},
            body=body,
            source_ip=str(http.get("sourceIp") or ""),
            user_agent=str(http.get("userAgent") or headers.get("user-agent", ""))[:200],
            request_id=str(ctx.get("requestId") or ""),
        )

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or a 400/413 saying what is wrong with it."""
        if len(self.body) > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large",
                           f"request body over {MAX_BODY_BYTES // 1024} KB")
        if not self.body.strip():
            raise ApiError(400, "bad_json", "request body is empty; send a JSON object")
        try:
            value = loads(self.body)
        except EventError as exc:
            raise ApiError(400, "bad_json", f"request body is {exc}") from exc
        if not isinstance(value, dict):
            raise ApiError(400, "bad_json", "request body must be a JSON object")
        return value

    def bearer_token(self) -> str | None:
        value = self.headers.get("authorization", "").strip()
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store",
                    **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), default=str),
        "isBase64Encoded": False,
    }


def error(exc: ApiError, request_id: str = "") -> Response:
    body: dict[str, Any] = {"error": exc.code, "message": str(exc)}
    if exc.details is not None:
        body["details"] = exc.details
    if request_id:
        body["request_id"] = request_id
    return respond(exc.status, body, exc.headers)


def serve(event: Any, work: Callable[[Request], Response], *, name: str) -> Response:
    """Run one endpoint: parse the event, call ``work``, turn errors into answers."""
    request_id = ""
    try:
        req = Request.from_event(event)
        request_id = req.request_id
        return work(req)
    except ApiError as exc:
        if exc.status >= 500:
            log.error("%s: %s (%s)", name, exc, exc.code)
        else:
            log.info("%s: %d %s: %s", name, exc.status, exc.code, exc)
        return error(exc, request_id)
    except ConfigError as exc:
        log.error("%s: misconfigured: %s", name, exc)
        return error(ApiError(500, "misconfigured", "the service is misconfigured"), request_id)
    except Exception:
        # A Lambda that raises makes API Gateway answer a bare 500; log it with
        # the request id instead and give the client something to quote.
        log.exception("%s: request %s failed", name, request_id or "?")
        return error(ApiError(500, "internal", "internal error; try again"), request_id)
