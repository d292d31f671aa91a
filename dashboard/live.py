"""Socket.IO: who may connect, which rooms they join, what is pushed.

A connection without a logged-in session is refused at the handshake. A user
joins one room per site they are allowed (``site:<site_id>``) and nothing else,
so an event reaches only the desks of its site. With ``message_queue`` set
(Redis), ``emit`` goes through the queue and every dashboard process behind the
load balancer delivers it to its own clients.

Events sent to browsers: ``desk_event`` (a stored event record, as returned by
``/api/events``) and ``ack`` (``{event_id, by, at}``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, request, session
from flask_socketio import SocketIO, join_room

log = logging.getLogger(__name__)


def room(site_id: str) -> str:
    return f"site:{site_id}"


class Live:
    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio
        socketio.on_event("connect", self._on_connect)
        socketio.on_event("disconnect", self._on_disconnect)

    def publish(self, record: dict[str, Any]) -> None:
        self.socketio.emit("desk_event", record, to=room(record["site_id"]))

    def publish_ack(self, site_id: str, ack: dict[str, Any]) -> None:
        self.socketio.emit("ack", ack, to=room(site_id))

    def _on_connect(self, auth: Any = None) -> bool:
        name = session.get("user")
        user = current_app.extensions["oneeye.store"].get_user(name) if name else None
        if user is None:
            log.warning("socket: refused connection without a session from %s",
                        request.remote_addr)
            return False
        for site in user["sites"]:
            join_room(room(site))
        log.info("socket: %s connected (sites %s)", user["name"], ",".join(user["sites"]))
        return True

    def _on_disconnect(self, reason: Any = None) -> None:
        log.debug("socket: %s disconnected", session.get("user"))
