"""Socket.IO: who may connect, which rooms they join, what is pushed.

A connection without a logged-in session is refused at the handshake. A user
joins one room per site they are allowed (``site:<site_id>``) and nothing else,
so an event reaches only the desks of its site. With ``message_queue`` set
(Redis), ``emit`` goes through the queue and every dashboard process behind the
load balancer delivers it to its own clients.

Events sent to browsers: ``desk_event`` (a stored event record, as returned by
``/api/events``), ``ack`` (``{event_id, by, at}``), ``alert_ack`` (a banner's group
acknowledged: ``{kind, subject, upto_seq, by, at, event_ids}``), ``feedback`` (a
verdict ``{event_id, verdict, by, at}``), ``device`` (a camera's row changed: the
panel refreshes) and ``logged_out`` (the login ended; the page goes to the login
form). Each socket also joins
``login:<login_id>`` so a logout reaches every tab of that login.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import request, session
from flask_socketio import SocketIO, join_room

from dashboard.api import present
from dashboard.auth import session_user

log = logging.getLogger(__name__)


def room(site_id: str) -> str:
    return f"site:{site_id}"


def login_room(login_id: str) -> str:
    return f"login:{login_id}"


class Live:
    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio
        socketio.on_event("connect", self._on_connect)
        socketio.on_event("disconnect", self._on_disconnect)

    def publish(self, record: dict[str, Any]) -> None:
        self.emit("desk_event", record)

    def emit(self, name: str, payload: dict[str, Any]) -> None:
        """Send ``payload`` (which names its ``site_id``) to the desks of that site."""
        if name == "desk_event":
            payload = present(payload)
        self.socketio.emit(name, payload, to=room(str(payload["site_id"])))

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
        join_room(login_room(str(session["login_id"])))
        log.info("socket: %s connected (sites %s)", user["name"], ",".join(user["sites"]))
        return True

    def _on_disconnect(self, reason: Any = None) -> None:
        log.debug("socket: login %s disconnected (%s)", session.get("login_id"), reason)
