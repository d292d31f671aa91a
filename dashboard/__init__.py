"""OneEye teller dashboard: ``create_app(settings)`` wires the parts.

- ``dashboard.sns_endpoint`` — ``POST /sns`` (verified SNS deliveries)
- ``dashboard.store``        — events, acknowledgements, devices, users (SQLite/PostgreSQL,
  SQLAlchemy Core; migrations in ``dashboard/migrations``)
- ``dashboard.services``     — the typed parts of the app (``services()``)
- ``dashboard.auth``         — login, sessions, CSRF, safe ``next``
- ``dashboard.throttle``     — failed-login counters per account/address (Redis or database)
- ``dashboard.proxies``      — forwarded headers believed from ``trusted_proxies`` only
- ``dashboard.tenancy``      — who may see and change what (sites, agencies, users)
- ``dashboard.accounts``     — the users page (create, edit, password reset, remove)
- ``dashboard.live``         — Socket.IO rooms per site; sockets of ended logins closed
- ``dashboard.api`` / ``dashboard.desk`` — JSON API and pages
- ``dashboard.cases``        — the agency officer's Cases and case pages

Async mode ``gevent`` (the default) is the production server: gevent's WSGI
server with websockets, many sockets per process (one greenlet instead of two OS
threads per client); ``oneeye dashboard run`` (``dashboard.cli``) starts it through
``oneeye.commands.serve_gevent``, which monkey-patches before anything else is imported.
``threading`` (Werkzeug's development server) needs no monkey-patching and is what
the tests' in-process apps use. bench/fanout.py compares both.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import simple_websocket.ws
from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask_socketio import SocketIO
from markupsafe import escape
from werkzeug.exceptions import HTTPException
from wsproto.extensions import PerMessageDeflate

from dashboard import accounts, api, auth, cases, desk, manage, sns_endpoint
from dashboard.cloud import Cloud
from dashboard.live import SOCKET_CHECK_S, Live
from dashboard.proxies import TrustedProxies
from dashboard.roles import home_of, pages_of
from dashboard.services import Services, install, services_of
from dashboard.settings import DashboardSettings
from dashboard.store import Store, open_store
from dashboard.throttle import LoginThrottle, counters_for
from dashboard.urls import IdConverter
from oneeye.sns import Verifier
from oneeye.types import Clock

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600
_CSP = ("default-src 'self'; img-src 'self' data: http: https:; connect-src 'self' ws: wss:; "
        "script-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'")
#: Strict-Transport-Security when the dashboard serves HTTPS itself: a year, the usual
#: minimum for browsers' preload lists; not includeSubDomains (other hosts are not ours).
HSTS = "max-age=31536000"

__all__ = ["DashboardSettings", "create_app"]


def create_app(settings: DashboardSettings | None = None, *, clock: Clock = time.time) -> Flask:
    """The dashboard app; ``clock`` (seconds since the epoch) times events, devices, retention.

    Opening the store migrates its database to the newest revision (``dashboard/migrations``).
    """
    settings = settings or DashboardSettings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.resolved_secret_key(),
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="oneeye_session",
        MAX_CONTENT_LENGTH=512 * 1024,
    )
    store = open_store(settings.resolved_database_url(), clock=clock)
    if not settings.websocket_compression:
        _decline_websocket_compression()
    socketio = SocketIO(app, async_mode=settings.async_mode, message_queue=settings.message_queue,
                        channel=settings.message_queue_channel,
                        manage_session=True, logger=False, engineio_logger=False)
    parts = Services(
        settings=settings, store=store, socketio=socketio, live=Live(socketio),
        verifier=Verifier(settings.allowed_topics, pinned_certs=settings.pinned_cert_bytes(),
                          max_age_s=settings.sns_max_age_s),
        login_throttle=LoginThrottle(
            counters_for(settings.resolved_login_store(), store.login_failures),
            account_attempts=settings.login_attempts,
            address_attempts=settings.login_ip_attempts, window_s=settings.login_window_s),
        cloud=Cloud.from_settings(settings))
    install(app, parts)
    if settings.trusted_proxies:
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, settings.trusted_proxies, settings.proxy_hops)
    app.url_map.converters["id"] = IdConverter
    for blueprint in (auth.bp, sns_endpoint.bp, api.bp, desk.bp, manage.bp, cases.bp,
                      accounts.bp):
        app.register_blueprint(blueprint)
    app.before_request(auth.load_user)
    app.before_request(auth.check_csrf)
    app.jinja_env.globals["csrf_token"] = auth.csrf_token
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    if not settings.allowed_topics:
        log.warning("no allowed SNS topics configured: /sns will reject every message")
    store.purge(settings.retention_days, ids_older_than_days=settings.event_ids_retention_days)
    socketio.start_background_task(_purge_loop, socketio, store, settings)
    socketio.start_background_task(_socket_check_loop, parts)
    if settings.it_alert_topic_arn:
        log.warning("it_alert_topic_arn is no longer used by the dashboard: the cloud emails "
                    "branch IT about camera transitions (template ItAlertTopic)")
    return app


def socketio_of(app: Flask) -> SocketIO:
    return services_of(app).socketio


def run_server(app: Flask, host: str, port: int) -> None:
    """Serve until stopped: gevent's WSGI server (production), or Werkzeug's (threading).

    With ``tls_cert``/``tls_key`` set, either server speaks HTTPS itself; otherwise
    TLS is terminated in front of it (see README "Security model").
    """
    sio = socketio_of(app)
    settings = services_of(app).settings
    tls = (str(settings.tls_cert), str(settings.tls_key)) if settings.tls_cert else None
    if sio.async_mode != "gevent":
        log.warning("async_mode threading: Werkzeug's development server (tests, debugging); "
                    "use async_mode gevent in production")
        sio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, log_output=False,
                use_reloader=False, ssl_context=tls)
        return
    from gevent import pywsgi  # gevent stays lazy: importing it in threading mode is not free

    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit this on Linux; without it Nagle + delayed ACK cap each
    # websocket at a few dozen small frames a second and deliveries queue up for seconds
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(addr)
    listener.listen(1024)
    ssl_args = {"certfile": tls[0], "keyfile": tls[1]} if tls else {}
    pywsgi.WSGIServer(listener, app, log=None, **ssl_args).serve_forever()


def _decline_websocket_compression() -> None:
    """Make simple-websocket (both async modes) decline permessage-deflate offers.

    simple-websocket accepts deflate whenever a client offers it (browsers always do)
    and has no option for it; an extension that declines every offer is the one
    seam. Process-wide, which is what a server process wants.
    """
    class _Declined(PerMessageDeflate):
        def accept(self, offer: str) -> None:  # type: ignore[override]
            return None

    simple_websocket.ws.PerMessageDeflate = _Declined  # type: ignore[misc]


def _purge_loop(socketio: SocketIO, store: Store, settings: DashboardSettings) -> None:
    while not store.closed.is_set():
        socketio.sleep(PURGE_EVERY_S)
        if store.closed.is_set():   # closed while asleep: its database may be gone
            return
        try:
            store.purge(settings.retention_days,
                        ids_older_than_days=settings.event_ids_retention_days)
        except Exception:  # keep purging later; a failed purge loses nothing
            log.exception("retention purge failed")


def _socket_check_loop(parts: Services) -> None:
    """Close sockets whose login ended in another process (``dashboard.live``), until the
    store is closed."""
    while not parts.store.closed.is_set():
        parts.socketio.sleep(SOCKET_CHECK_S)
        if parts.store.closed.is_set():   # closed while asleep: its database may be gone
            return
        try:
            parts.live.sweep(parts.store.logins)
        except Exception:  # the next check tries again; sockets are re-checked then
            log.exception("socket login check failed")


def _security_headers(resp: Response) -> Response:
    if services_of(current_app).settings.tls_cert:
        # only when this process is the TLS endpoint: behind a TLS-terminating proxy the
        # proxy sends it (README "Security model"); over plain http it would be ignored
        resp.headers.setdefault("Strict-Transport-Security", HSTS)
    resp.headers.setdefault("Content-Security-Policy", _CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    return resp


def _http_error(exc: HTTPException) -> Any:
    """JSON for the API; for pages, the navigation and what the user can open instead."""
    code = exc.code or 500
    if request.path.startswith(("/api/", "/sns")) or request.is_json:
        return jsonify({"error": exc.name, "reason": exc.description}), code
    user = g.get("user")
    try:
        return Response(render_template("error.html", code=code, name=exc.name,
                                        description=exc.description or "",
                                        pages=pages_of(user), home=home_of(user)),
                        status=code, mimetype="text/html")
    except Exception:  # the store or a template is what failed: a page without them
        log.exception("error page for %s could not be rendered", code)
        return Response(f"<!doctype html><title>{code}</title><h1>{code} "
                        f"{escape(exc.name)}</h1><p>{escape(exc.description or '')}</p>",
                        status=code, mimetype="text/html")
