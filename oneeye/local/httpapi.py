"""The API Gateway HTTP API stand-in (payload format 2.0) plus the mobile page.

Routes come from the template's ``HttpApi`` events (``Path``/``Method``, with
``{param}`` segments) and call the same handlers as in AWS. Also served here:

- ``/`` and the static files of ``mobile_upload/`` (the phone page), with a strict
  Content-Security-Policy (:data:`PHONE_PAGE_CSP`);
- ``/sns/confirm?Action=ConfirmSubscription|Unsubscribe…`` — the SubscribeURL /
  UnsubscribeURL of the local SNS delivery;
- ``/s3-upload/{bucket}`` — a same-origin proxy that forwards the phone's
  presigned multipart POST unchanged to the moto server. Why a proxy and not
  bucket CORS: a phone on the LAN cannot reach moto (it listens on 127.0.0.1
  only), and the page then needs no cross-origin request at all. The presigned
  POST's policy and signature do not cover the URL, so forwarding keeps them
  valid; the only change is that ``url`` in API responses pointing at moto is
  rewritten to this route on the host the client used. The proxy is no door
  into moto: it forwards only a ``multipart/form-data`` POST to exactly the
  upload bucket's path (no query string), and answers every other request
  (moto's own ``/moto-api/`` recorder and reset, other buckets or keys, other
  methods or content types) with a plain 404; a 5xx of moto's becomes a bare 502;
- ``/healthz``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from werkzeug.security import safe_join
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from oneeye.local.lambdas import Lambdas
from oneeye.local.template import HttpRoute

log = logging.getLogger(__name__)

_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded",
               "application/xml", "application/javascript")
#: The phone page's Content-Security-Policy: only its own scripts and styles, photos
#: previewed from blob:, requests only to this origin (the API and the S3 upload proxy).
PHONE_PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                  "img-src 'self' blob: data:; connect-src 'self'; manifest-src 'self'; "
                  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
Confirm = Callable[[str, str], "str | None"]
Unsubscribe = Callable[[str], bool]


class CompiledRoute:
    def __init__(self, route: HttpRoute) -> None:
        self.route = route
        pattern = re.sub(r"\\\{(\w+)(?:\\\+)?\\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
        self.regex = re.compile(f"^{pattern}$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.route.method not in ("ANY", method):
            return None
        m = self.regex.match(path)
        return m.groupdict() if m else None


def apigw_event(req: Request, route: HttpRoute, params: dict[str, str]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event for ``req``."""
    raw = req.get_data()
    ctype = req.headers.get("content-type", "")
    is_text = not raw or ctype.startswith(_TEXT_TYPES)
    if is_text:
        try:
            raw.decode()
        except UnicodeDecodeError:  # "text" that is not UTF-8: API Gateway sends it base64
            is_text = False
    headers: dict[str, str] = {}
    for k, v in req.headers.items():
        if k.lower() == "cookie":
            continue
        key = k.lower()
        headers[key] = f"{headers[key]},{v}" if key in headers else v
    now = time.time()
    route_key = f"{route.method} {route.path}"
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": route_key, "rawPath": req.path,
        "rawQueryString": req.query_string.decode("latin-1"), "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": req.host,
            "domainPrefix": req.host.split(".")[0],
            "http": {"method": req.method, "path": req.path, "protocol": "HTTP/1.1",
                     "sourceIp": req.remote_addr or "127.0.0.1",
                     "userAgent": req.headers.get("user-agent", "")},
            "requestId": uuid.uuid4().hex, "routeKey": route_key, "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000)},
        "isBase64Encoded": not is_text,
    }
    if req.cookies:
        event["cookies"] = [f"{k}={v}" for k, v in req.cookies.items()]
    if req.args:
        event["queryStringParameters"] = {k: ",".join(req.args.getlist(k)) for k in req.args}
    if params:
        event["pathParameters"] = params
    if raw:
        event["body"] = raw.decode() if is_text else base64.b64encode(raw).decode()
    return event


def apigw_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Format 2.0 response rules: a dict with statusCode is used as is, anything else is JSON."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        for cookie in result.get("cookies") or []:
            headers.setdefault("set-cookie", cookie)
        return int(result["statusCode"]), headers, data
    return 200, {"content-type": "application/json"}, json.dumps(result).encode()


class HttpApi:
    def __init__(self, routes: list[HttpRoute], lambdas: Lambdas, *, static_dir: Path,
                 moto_url: str, upload_bucket: str, confirm: Confirm,
                 unsubscribe: Unsubscribe) -> None:
        """``upload_bucket``: the only bucket ``/s3-upload/`` forwards POSTs to (the
        template's data bucket, where upload_url's presigned POSTs go)."""
        self.routes = [CompiledRoute(r) for r in routes]
        self.upload_bucket = upload_bucket
        self.upload_path = f"/s3-upload/{upload_bucket}"
        self._lambdas = lambdas
        self.static_dir = static_dir
        self.moto_url = moto_url.rstrip("/")
        self._confirm = confirm
        self._unsubscribe = unsubscribe
        self._http = requests.Session()
        self._server: BaseWSGIServer | None = None

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        try:
            resp = self._dispatch(req)
        except Exception:  # a handler crash is a 500 with a log line, like API Gateway
            log.exception("HTTP API %s %s failed", req.method, req.path)
            resp = Response(json.dumps({"message": "Internal Server Error"}), status=500,
                            mimetype="application/json")
        return resp(environ, start_response)

    def _dispatch(self, req: Request) -> Response:
        if req.path == "/healthz":
            return Response('{"ok": true}', mimetype="application/json")
        if req.path == "/sns/confirm":
            return self._sns_action(req)
        if req.path.startswith("/s3-upload/"):
            return self._s3_proxy(req)
        for cr in self.routes:
            params = cr.match(req.method, req.path)
            if params is not None:
                return self._invoke(req, cr.route, params)
        if req.method in ("GET", "HEAD") and not req.path.startswith("/api/"):
            return self._static(req.path)
        return Response(json.dumps({"message": "Not Found"}), status=404,
                        mimetype="application/json")

    def _invoke(self, req: Request, route: HttpRoute, params: dict[str, str]) -> Response:
        result = self._lambdas.invoke(route.function_id, apigw_event(req, route, params))
        status, headers, body = apigw_response(result)
        if "json" in headers.get("content-type", headers.get("Content-Type", "json")):
            body = self._rewrite_moto_urls(body, req)
        return Response(body, status=status, headers=headers)

    def _rewrite_moto_urls(self, body: bytes, req: Request) -> bytes:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return body
        if isinstance(data, dict) and str(data.get("url", "")).startswith(self.moto_url):
            data["url"] = f"{req.host_url.rstrip('/')}/s3-upload{data['url'][len(self.moto_url):]}"
            return json.dumps(data).encode()
        return body

    def _s3_proxy(self, req: Request) -> Response:
        """Forward a presigned upload POST to the upload bucket; a plain 404 for the rest."""
        ctype = req.headers.get("content-type", "")
        if (req.method != "POST" or req.path.rstrip("/") != self.upload_path
                or req.mimetype != "multipart/form-data"):
            log.info("S3 proxy: %s %s (%s) is not an upload POST: 404", req.method,
                     req.path[:200], ctype[:80] or "no content type")
            return Response("not found", status=404, mimetype="text/plain")
        try:
            upstream = self._http.post(f"{self.moto_url}/{self.upload_bucket}", data=req.get_data(),
                                       timeout=30, headers={"Content-Type": ctype})
        except requests.RequestException as exc:  # moto down or slow: the upload failed
            log.warning("S3 proxy: moto did not answer: %s", exc)
            return _upload_failed()
        if upstream.status_code >= 500:  # never pass an emulator's traceback to a client
            log.warning("S3 proxy: moto answered %d: %s", upstream.status_code,
                        upstream.text[:500])
            return _upload_failed()
        keep = {k: v for k, v in upstream.headers.items()
                if k.lower() in ("content-type", "etag", "location")}
        return Response(upstream.content, status=upstream.status_code, headers=keep)

    def _sns_action(self, req: Request) -> Response:
        action = req.args.get("Action", "")
        if action == "ConfirmSubscription":
            arn = self._confirm(req.args.get("TopicArn", ""), req.args.get("Token", ""))
            if arn is None:
                return _xml_error("InvalidParameter", "Invalid token", 400)
            return Response(
                "<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>"
                f"{arn}</SubscriptionArn></ConfirmSubscriptionResult>"
                "</ConfirmSubscriptionResponse>", mimetype="text/xml")
        if action == "Unsubscribe":
            if not self._unsubscribe(req.args.get("SubscriptionArn", "")):
                return _xml_error("NotFound", "Subscription does not exist", 404)
            return Response("<UnsubscribeResponse/>", mimetype="text/xml")
        return _xml_error("InvalidAction", f"unsupported action {action!r}", 400)

    def _static(self, path: str) -> Response:
        rel = path.lstrip("/") or "index.html"
        full = safe_join(str(self.static_dir), rel)
        if full is None or not Path(full).is_file():
            return Response("not found", status=404)
        mime = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json",
                ".webmanifest": "application/manifest+json"}.get(Path(full).suffix,
                                                                 "application/octet-stream")
        return Response(Path(full).read_bytes(), mimetype=mime, headers={
            "Cache-Control": "no-cache", "Content-Security-Policy": PHONE_PAGE_CSP,
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    def serve(self, host: str, port: int) -> HttpApi:
        self._server = make_server(host, port, self.wsgi, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="http-api").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _upload_failed() -> Response:
    return Response("the upload could not be stored; try again", status=502,
                    mimetype="text/plain")


def _xml_error(code: str, message: str, status: int) -> Response:
    return Response(f"<ErrorResponse><Error><Code>{code}</Code><Message>{message}</Message>"
                    "</Error></ErrorResponse>", status=status, mimetype="text/xml")
