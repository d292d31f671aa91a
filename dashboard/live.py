"""Socket.IO: who may connect, which rooms they join, what is pushed, and when a
socket is closed.

A connection without a logged-in session is refused at the handshake. A bank user
joins one room per site they are allowed (``site:<site_id>``); an agency officer joins
their agency's room (``agency:<agency>``, :func:`dashboard.roles.agency_of`). A sighting
(and its acknowledgements, verdicts, and the case's closing) reaches the desks of its site
and the case pages of its agency, and nothing else. With ``message_queue`` set
(Redis), ``emit`` goes through the queue and every dashboard process behind the
load balancer delivers it to its own clients.

Events sent to browsers: ``desk_event`` (a stored event record, as returned by
``/api/events``), ``ack`` (``{event_id, by, at}``), ``alert_ack`` (a banner's group
acknowledged: ``{kind, subject, upto_seq, by, at, event_ids}``), ``feedback`` (a
verdict ``{event_id, verdict, by, at}``), ``case_closed`` (``{case_id, by, at}``: the
case's banners say so), ``device`` (a camera's row changed: the panel refreshes) and
``logged_out`` (the login ended; the page goes to the login form). Each socket also joins
``login:<login_id>`` so a logout reaches every tab of that login.

Sessions that end. A login ends at logout, and when its account changes (password,
role, sites, removal: ``dashboard.store.users``). :meth:`Live.end_logins` then closes,
server-side and at once, every socket of those logins this process holds, and tells
the others' pages through the queue; every process also re-checks all its sockets'
logins every :data:`SOCKET_CHECK_S` seconds (:meth:`Live.sweep`, one query), so a
socket held by another process is closed within that time even if its page ignores
``logged_out``. Client-to-server events registered with :meth:`Live.on` check the
login before their handler runs.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import request, session
from flask_socketio import SocketIO, join_room

from dashboard.alerts import agency_of_record
from dashboard.api import present
from dashboard.auth import session_user
from dashboard.roles import agency_of
from dashboard.store.users import Logins

log = logging.getLogger(__name__)
#: How often every process re-checks its sockets' logins (seconds): the most a socket
#: of another process outlives its login when its page ignores ``logged_out``.
SOCKET_CHECK_S = 2.0


def room(site_id: str) -> str:
    return f"site:{site_id}"


def agency_room(agency: str) -> str:
    return f"agency:{agency}"


def login_room(login_id: str) -> str:
    return f"login:{login_id}"


class Live:
    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio
        #: This process's sockets: sid → login id (what :meth:`sweep` checks).
        self._logins: dict[str, str] = {}
        self._lock = threading.Lock()
        socketio.on_event("connect", self._on_connect)
        socketio.on_event("disconnect", self._on_disconnect)

    def publish(self, record: dict[str, Any]) -> None:
        self.emit("desk_event", record, agency=agency_of_record(record))

    def emit(self, name: str, payload: dict[str, Any], *, agency: str | None = None) -> None:
        """Send ``payload`` (which names its ``site_id``) to the desks of that site, and to
        the case pages of ``agency`` when it is about one of its cases."""
        if name == "desk_event":
            payload = present(payload)
        rooms = [room(str(payload["site_id"]))] if payload.get("site_id") else []
        if agency:
            rooms.append(agency_room(agency))
        if rooms:
            self.socketio.emit(name, payload, to=rooms)

    def on(self, name: str, handler: Callable[..., Any]) -> None:
        """Register a client-to-server event whose handler runs only while the socket's
        login is valid; otherwise the socket is closed and the handler does not run."""
        @functools.wraps(handler)
        def checked(*args: Any) -> Any:
            if session_user() is None:
                self._close([request.sid])  # type: ignore[attr-defined]
                return None
            return handler(*args)
        self.socketio.on_event(name, checked)

    def end_login(self, login_id: str) -> None:
        """Logout: see :meth:`end_logins`."""
        self.end_logins([login_id])

    def end_logins(self, login_ids: Iterable[str]) -> None:
        """These logins ended: tell every socket of them (in any process, through the
        message queue) to leave, and close those this process holds, now."""
        ended = set(login_ids)
        for login_id in ended:
            self.socketio.emit("logged_out", {}, to=login_room(login_id))
        with self._lock:
            sids = [sid for sid, login in self._logins.items() if login in ended]
        self._close(sids)

    def sweep(self, logins: Logins) -> int:
        """Close this process's sockets whose login is no longer valid (ended, changed
        account, removed user); returns how many were closed."""
        with self._lock:
            held = dict(self._logins)
        valid = logins.valid(sorted(set(held.values())))
        stale = [sid for sid, login in held.items() if login not in valid]
        self._close(stale)
        return len(stale)

    def _close(self, sids: list[str]) -> None:
        for sid in sids:
            with self._lock:
                self._logins.pop(sid, None)
            self.socketio.server.disconnect(sid, namespace="/")
        if sids:
            log.info("socket: closed %d connection(s) of ended logins", len(sids))

    def _on_connect(self, auth: Any = None) -> bool:
        user = session_user()
        if user is None:
            log.warning("socket: refused connection without a valid session from %s",
                        request.remote_addr)
            return False
        for site in user["sites"]:
            join_room(room(site))
        agency = agency_of(user)
        if agency:
            join_room(agency_room(agency))
        login_id = str(session["login_id"])
        join_room(login_room(login_id))
        with self._lock:
            self._logins[request.sid] = login_id  # type: ignore[attr-defined]
        log.info("socket: %s connected (sites %s)", user["name"], ",".join(user["sites"]))
        return True

    def _on_disconnect(self, reason: Any = None) -> None:
        with self._lock:
            self._logins.pop(request.sid, None)  # type: ignore[attr-defined]
        log.debug("socket: login %s disconnected (%s)", session.get("login_id"), reason)
