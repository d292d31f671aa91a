"""The app's parts, typed, in one place: ``services()`` in a request, ``services_of(app)``
elsewhere (flaskr's ``get_db()`` pattern, without its global).

:func:`dashboard.create_app` builds one frozen :class:`Services` and :func:`install`\\ s it
on the app; views, Socket.IO handlers and background tasks read it from there instead of
looking up ``app.extensions`` by string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app
from flask_socketio import SocketIO

from dashboard.settings import DashboardSettings
from dashboard.store import Store
from dashboard.throttle import LoginThrottle
from oneeye.sns import Verifier

if TYPE_CHECKING:  # both import views, and views import this module
    from dashboard.cloud import Cloud
    from dashboard.live import Live

#: The one key of ``app.extensions`` the dashboard uses.
KEY = "oneeye"


@dataclass(frozen=True)
class Services:
    settings: DashboardSettings
    store: Store
    socketio: SocketIO
    #: Pushes to the Socket.IO rooms of a site (and of a login).
    live: Live
    #: Checks SNS signatures on ``/sns``.
    verifier: Verifier
    login_throttle: LoginThrottle
    #: The management screens' cloud resources.
    cloud: Cloud


def install(app: Flask, parts: Services) -> None:
    app.extensions[KEY] = parts


def services_of(app: Flask) -> Services:
    """The services of ``app``; KeyError if it was not made by ``create_app``."""
    parts: Services = app.extensions[KEY]
    return parts


def services() -> Services:
    """The services of the app handling this request (or app context)."""
    return services_of(current_app)
