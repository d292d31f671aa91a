"""S3 browser-POST policy enforcement in front of the moto server (moto does not check).

Real S3 accepts a ``multipart/form-data`` POST to a bucket only if its ``policy``
is signed with the credentials' secret and the form keeps every condition of it
(`Creating a POST policy
<https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html>`_).
:class:`PostPolicyGuard` is a WSGI middleware that does the same checks before
the request reaches the emulator, and answers S3's ``403 AccessDenied`` otherwise:

- the signature: SigV4 (``x-amz-signature`` = HMAC-SHA256 of the base64 policy
  with the key derived from the secret, date, region and ``s3``) or SigV2
  (``signature`` = base64 HMAC-SHA1), for a known access key;
- ``expiration`` has not passed (an injectable clock, for tests);
- every condition holds: exact ``{"field": value}`` / ``["eq", "$field", v]``,
  ``["starts-with", "$field", prefix]``, ``["content-length-range", min, max]``
  on the file's size, ``{"bucket": …}`` on the URL's bucket;
- every form field except ``policy``, the signature, ``file`` and ``x-ignore-*``
  is named by a condition (so nothing can be added, e.g. another ``key``).

Then, optionally, one check real S3 cannot make: ``grant_check(bucket, key)``
answers why the upload's grant no longer holds (the local stack refuses a POST
whose agency token was revoked after its grant was issued, see
:class:`oneeye.local.moto_server.MotoServer`), refused with the same 403.

Other requests (the SDKs' signed PUT/GET, SQS, SNS, DynamoDB) pass unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.formparser import parse_form_data
from werkzeug.wrappers import Response

from oneeye.errors import EventError, PolicyError
from oneeye.events import loads

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
#: ``(bucket, key) -> why the POST is refused, or None``.
GrantCheck = Callable[[str, str], str | None]
#: Form fields S3 never requires a condition for.
_EXEMPT = {"policy", "x-amz-signature", "signature", "file", "awsaccesskeyid"}
#: Larger bodies are refused before parsing (S3's own POST limit is 5 GB; ours are photos).
MAX_BODY_BYTES = 64 * 1024 * 1024


class PostPolicyGuard:
    """WSGI middleware: browser-based S3 POST uploads must satisfy their signed policy."""

    def __init__(self, app: WsgiApp, secrets: Mapping[str, str], *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 grant_check: GrantCheck | None = None) -> None:
        self.app = app
        self.secrets = secrets
        self.clock = clock
        self.grant_check = grant_check

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        ctype = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        if not ctype.lower().startswith("multipart/form-data"):
            if _is_browser_post(environ):
                # S3 answers 412/400 here; moto would fail with a 500 looking for ``key``.
                return _denied("a POST to a bucket must be multipart/form-data", 400,
                               "InvalidArgument")(environ, start_response)
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY_BYTES:
            return _denied(f"body of {length} bytes", 400, "MaxPostPreDataLengthExceeded")(
                environ, start_response)
        body = environ["wsgi.input"].read(length)
        parsed = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        _, form, files = parse_form_data(parsed)
        bucket = environ.get("PATH_INFO", "/").strip("/").split("/")[0]
        file = files.get("file")
        size = len(file.read()) if file is not None else -1
        fields = {k.lower(): v for k, v in form.items()}
        try:
            self.check(fields, bucket=bucket, size=size)
        except PolicyError as exc:
            log.warning("S3 POST to %s refused: %s (key %r)", bucket, exc, fields.get("key"))
            return _denied(f"Invalid according to Policy: {exc}", 403, "AccessDenied")(
                environ, start_response)
        if self.grant_check is not None:
            key = str(fields.get("key", ""))
            if file is not None:  # S3 substitutes the file's name into the key
                key = key.replace("${filename}", file.filename or "")
            failed = False
            try:
                reason = self.grant_check(bucket, key)
            except Exception as exc:  # the WSGI boundary: a failed check refuses (403), never 500
                failed = True
                reason = f"the grant could not be checked ({type(exc).__name__}: {exc})"
            if reason is not None:
                log.warning("S3 POST to %s refused: %s (key %r)", bucket, reason, key,
                            exc_info=failed)
                return _denied(f"Access Denied: {reason}", 403, "AccessDenied")(
                    environ, start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)

    def check(self, fields: Mapping[str, str], *, bucket: str, size: int) -> None:
        """Raise :class:`PolicyError` unless ``fields`` (lower-case names) satisfy the policy."""
        policy_b64 = fields.get("policy")
        if not policy_b64:
            raise PolicyError("no policy (anonymous POST)")
        self._check_signature(fields, policy_b64)
        try:
            policy = loads(base64.b64decode(policy_b64, validate=True))
            expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
            conditions = list(policy["conditions"])
        except (ValueError, KeyError, TypeError, AttributeError, EventError) as exc:
            raise PolicyError(f"malformed policy ({exc})") from exc
        if self.clock() > expiration:
            raise PolicyError("Policy expired")
        values = {**fields, "bucket": bucket}
        covered = {"bucket"}
        for cond in conditions:
            covered.add(_condition(cond, values, size))
        extra = sorted(k for k in fields if k not in covered and k not in _EXEMPT
                       and not k.startswith("x-ignore-"))
        if extra:
            raise PolicyError(f"extra input fields: {', '.join(extra)}")

    def _check_signature(self, fields: Mapping[str, str], policy_b64: str) -> None:
        if "x-amz-signature" in fields:
            if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
                raise PolicyError("unsupported x-amz-algorithm")
            parts = fields.get("x-amz-credential", "").split("/")
            if len(parts) != 5 or parts[4] != "aws4_request":
                raise PolicyError("malformed x-amz-credential")
            access, day, region, service, _ = parts
            key = f"AWS4{self._secret(access)}".encode()
            for part in (day, region, service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
            given = fields["x-amz-signature"]
        elif "signature" in fields:
            secret = self._secret(fields.get("awsaccesskeyid", ""))
            expected = base64.b64encode(hmac.new(secret.encode(), policy_b64.encode(),
                                                 hashlib.sha1).digest()).decode()
            given = fields["signature"]
        else:
            raise PolicyError("no signature")
        if not hmac.compare_digest(expected, given):
            raise PolicyError("signature does not match")

    def _secret(self, access_key: str) -> str:
        secret = self.secrets.get(access_key)
        if secret is None:
            raise PolicyError("unknown access key")
        return secret


def _is_browser_post(environ: dict[str, Any]) -> bool:
    """An unsigned POST to ``/{bucket}`` (no query): S3's POST Object, nothing else.

    Every SDK request carries an Authorization header; SQS, SNS and DynamoDB post to
    ``/`` or a queue URL, S3's DeleteObjects to ``/{bucket}?delete``.
    """
    path = [p for p in environ.get("PATH_INFO", "/").split("/") if p]
    return (len(path) == 1 and not environ.get("QUERY_STRING")
            and "HTTP_AUTHORIZATION" not in environ)


def _condition(cond: Any, values: Mapping[str, str], size: int) -> str:
    """Check one condition; return the (lower-case) field it covers."""
    if isinstance(cond, dict) and len(cond) == 1:
        (name, want), = cond.items()
        op, field = "eq", str(name).lower()
    elif isinstance(cond, list) and len(cond) == 3 and cond[0] == "content-length-range":
        low, high = int(cond[1]), int(cond[2])
        if not low <= size <= high:
            raise PolicyError(f"file of {size} bytes is outside content-length-range "
                              f"{low}–{high}")
        return "content-length-range"
    elif isinstance(cond, list) and len(cond) == 3 and cond[0] in ("eq", "starts-with") \
            and str(cond[1]).startswith("$"):
        op, field, want = cond[0], str(cond[1])[1:].lower(), cond[2]
    else:
        raise PolicyError(f"malformed condition {cond!r}")
    actual = values.get(field)
    ok = actual is not None and (actual == want if op == "eq"
                                 else actual.startswith(str(want)))
    if not ok:
        raise PolicyError(f"condition failed: [{op!r}, '${field}', {want!r}] "
                          f"(got {actual!r})")
    return field


def _denied(message: str, status: int, code: str) -> Response:
    safe = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{safe}</Message></Error>", status=status,
                    mimetype="application/xml")
