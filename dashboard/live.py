"""Socket.IO: who may connect, which rooms they join, what is pushed.

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
"""

from __future__ import annotations

import logging
from typing import Any

from flask import request, session
from flask_socketio import SocketIO, join_room

from dashboard.alerts import agency_of_record
from dashboard.api import present
from dashboard.auth import session_user
from dashboard.roles import agency_of

log = logging.getLogger(__name__)


def room(site_id: str) -> str:
    return f"site:{site_id}"


def agency_room(agency: str) -> str:
    return f"agency:{agency}"


def login_room(login_id: str) -> str:
    return f"login:{login_id}"


class Live:
    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio
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

    def end_login(self, login_id: str) -> None:
        """Logout: tell every socket of this login (in any process, through the message
        queue) to leave, and close those this process holds."""
        self.socketio.emit("logged_out", {}, to=login_room(login_id))
        # the room is Socket.IO's own record of this login's sockets (local ones only)
        sids = [sid for sid, _ in self.socketio.server.manager.get_participants(
            "/", login_room(login_id))]
        for sid in sids:
            self.socketio.server.disconnect(sid, namespace="/")
        if sids:
            log.info("socket: closed %d connection(s) of an ended login", len(sids))

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
        join_room(login_room(str(session["login_id"])))
        log.info("socket: %s connected (sites %s)", user["name"], ",".join(user["sites"]))
        return True

    def _on_disconnect(self, reason: Any = None) -> None:
        log.debug("socket: login %s disconnected (%s)", session.get("login_id"), reason)
