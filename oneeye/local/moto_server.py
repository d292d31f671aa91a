"""The moto server (S3, SQS, SNS, DynamoDB, IoT registry stand-in) in a thread of ``oneeye up``.

In front of it, :class:`oneeye.local.post_policy.PostPolicyGuard` checks browser
POST uploads against their signed policy, as real S3 does and moto does not.

One patch, on purpose: with ``MessageStructure=json`` SNS gives each protocol its
own text (``email``, ``sms``…), but moto hands an SQS subscriber only the ``sqs``
or ``default`` text. The outbox needs the email *and* the SMS text that AWS would
send, so for the outbox's own tap queues (and only those) the subscriber gets
the whole structure; the outbox then picks the per-protocol texts from it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from oneeye.errors import ConfigError

log = logging.getLogger(__name__)

_tap_queues: set[str] = set()
_patched = False
_patch_lock = threading.Lock()


#: The local stack's only credentials (``FAKE_CREDENTIALS``): access key → secret.
LOCAL_SECRETS = {"testing": "testing"}


class MotoServer:
    def __init__(self, host: str, port: int, *, secrets: Mapping[str, str] = LOCAL_SECRETS,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        from moto.server import ThreadedMotoServer

        self.host, self.port = host, port
        self._secrets, self._clock = secrets, clock
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> MotoServer:
        # ThreadedMotoServer.start() waits forever if the bind fails; watch the thread.
        srv: Any = self._server
        srv._thread = threading.Thread(target=self._serve, daemon=True, name="moto")
        srv._thread.start()
        waited = 0.0
        while not srv._server_ready_event.wait(0.1):
            waited += 0.1
            if not srv._thread.is_alive() or waited > timeout:
                raise ConfigError(f"moto server could not listen on {self.host}:{self.port} "
                                  "(ports.moto / --moto-port)")
        log.info("moto server on %s", self.url)
        return self

    def _serve(self) -> None:
        """ThreadedMotoServer's own entry, with the POST-policy check in front of the app."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from oneeye.local.post_policy import PostPolicyGuard

        srv: Any = self._server
        app = PostPolicyGuard(DomainDispatcherApplication(create_backend_app), self._secrets,
                              clock=self._clock)
        srv._server = make_server(self.host, self.port, app, True,
                                  request_handler=MotoRequestHandler)
        srv._server_ready_event.set()
        srv._server.serve_forever()

    def stop(self) -> None:
        try:
            self._server.stop()
        except Exception:  # stopping a test/demo server: nothing left to protect
            log.debug("moto server stop", exc_info=True)


def tap_structured_messages(queue_arn: str) -> None:
    """Deliver MessageStructure=json publishes to ``queue_arn`` with every protocol's text."""
    global _patched
    from moto.sns import models

    with _patch_lock:
        _tap_queues.add(queue_arn)
        if _patched:
            return
        original = models.Subscription._parse_message_structure

        def parse(self: Any, message: str, protocol: str) -> str:
            text = original(self, message, protocol)  # keeps moto's validation errors
            return message if self.endpoint in _tap_queues else text

        models.Subscription._parse_message_structure = parse  # type: ignore[method-assign]
        _patched = True
