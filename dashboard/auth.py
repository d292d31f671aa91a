"""Login, sessions, CSRF and the ``next`` redirect (throttling: ``dashboard.throttle``).

Passwords are argon2id hashes (argon2-cffi). The session cookie holds only a
``login_id`` and a CSRF token, signed with the secret key; it is HttpOnly,
SameSite=Lax and Secure unless the settings turn that off for local http. The
``login_id`` names a row of the store's ``logins`` table (``dashboard.store.users.Logins``),
the session's only user record: logout ends that row, so a copied cookie stops working too.
The row holds the user's id and credential stamp at login; every request (and every
socket, ``dashboard.live``) checks both, so a password, role or site change, a removal,
or a new account under the same name ends the login at once.

Login throttling: failed attempts are counted per (client address, user name) and
per client address in a sliding window (``login_attempts`` per ``login_window_s``,
in-process); a blocked login answers 429 without checking the password.

CSRF: every form carries the session's token in ``csrf_token``; JSON calls send
it in the ``X-CSRF-Token`` header. ``/sns`` is exempt (it is authenticated by
the SNS signature, not a browser session).
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

import flask
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, g, request, session

from dashboard import tenancy
from dashboard.services import services

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
_hasher = PasswordHasher()
#: Verifying against this keeps the response time of unknown users like known ones.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))
F = TypeVar("F", bound=Callable[..., Any])


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def home_of(user: dict[str, Any] | None) -> str:
    """The page a role lands on after login: Cases for an agency officer, else the desk."""
    return "/cases" if (user or {}).get("role") == "agency_officer" else "/"


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/`` (never an error).

    Browsers strip tabs and newlines from URLs and treat ``\\`` like ``/``, so
    ``/%09/evil.example`` or ``/\\evil.example`` would leave the site as surely as
    ``//evil.example`` or ``https://evil.example``. A target passes only if it, and
    every percent-decoding of it, starts with one ``/`` and has no scheme, host,
    backslash or unprintable character (CR/LF would otherwise break the Location header).
    """
    if not target:
        return "/"
    candidate = target
    for _ in range(4):  # the raw value and up to three layers of percent-encoding
        if (not candidate.startswith("/") or candidate.startswith("//") or "\\" in candidate
                or not candidate.isprintable()):
            return "/"
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return "/"
        decoded = unquote(candidate)
        if decoded == candidate:
            return target
        candidate = decoded
    return "/"


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return cast(str, session["csrf"])


def check_csrf() -> None:
    """Before every unsafe request except /sns: the token must match the session's."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.endpoint == "sns.receive":
        return
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    expected = session.get("csrf")
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        log.warning("CSRF check failed for %s %s from %s", request.method, request.path,
                    request.remote_addr)
        flask.abort(400, description="CSRF token missing or wrong; reload the page")


def session_user() -> dict[str, Any] | None:
    """``{user_id, name, sites, role, agency}`` of this request's login, if it is still
    open, with ``sites`` scoped by :func:`dashboard.tenancy.scoped`.

    The cookie holds only the login id: a cookie saved before logout names an
    ended login and is refused, as is one whose user was removed, re-created or changed
    since (its stamp is no longer the user's).
    """
    login_id = session.get("login_id")
    if not login_id:
        return None
    return tenancy.scoped(services().store.logins.user(str(login_id)))


def load_user() -> None:
    g.user = session_user()


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            if request.path.startswith("/api/"):
                flask.abort(401)
            return flask.redirect(flask.url_for("auth.login", next=request.path))
        return view(*args, **kwargs)
    return cast(F, wrapped)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    status = 200
    if request.method == "POST":
        name = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")[:1024]
        parts = services()
        throttle = parts.login_throttle
        address = request.remote_addr
        if throttle.blocked(name, address):
            log.warning("login throttled for %r from %s", name, address)
            error, status = "Too many failed attempts. Wait a few minutes and try again.", 429
        else:
            user = parts.store.users.get(name) if name else None
            ok = check_password(user["password_hash"] if user else _DUMMY_HASH, password)
            if user and ok:
                throttle.succeeded(name)
                session.clear()
                session["login_id"] = parts.store.logins.start(user["user_id"], user["stamp"])
                csrf_token()
                log.info("user %s logged in from %s", name, address)
                # only paths on this site: an open redirect would let a link phish the login;
                # without one, each role lands on its own home (the desk, or Cases)
                target = request.args.get("next")
                return flask.redirect(safe_next(target) if target else home_of(user))
            throttle.failed(name, address)
            log.warning("failed login for %r from %s", name, address)
            error, status = "Wrong user name or password.", 401
    return flask.render_template("login.html", error=error), status


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    login_id = session.get("login_id")
    if login_id:
        services().store.logins.end(str(login_id))
        services().live.end_login(str(login_id))
        log.info("user %s logged out", (g.get("user") or {}).get("name"))
    session.clear()
    return flask.redirect(flask.url_for("auth.login"))
