"""The moto server (S3, SQS, SNS, DynamoDB, IoT registry stand-in) in a thread of ``oneeye up``.

In front of it, :class:`oneeye.local.post_policy.PostPolicyGuard` checks browser
POST uploads against their signed policy, as real S3 does and moto does not. Once
``agencies_table`` is set (``oneeye up`` sets it when the table exists), it also
refuses a phone upload's POST whose grant (``status/{upload_id}.json``) names an
agency token revoked since the grant was issued: :func:`oneeye.cloud.grants.revocation`,
the indexer's own rule, read from this server itself (it is threaded, so the guard may
call it while a request waits).

Durable state: moto keeps everything in memory, so the stack records every request
that changes lasting state with moto's own recorder (``moto.moto_api.recorder``,
the ``MOTO_ENABLE_RECORDING`` feature) into ``var/local/moto-recording.jsonl`` and
replays it through moto's ``replay_recording`` at the next start: buckets and
objects (galleries, snapshots, upload status), tables and items (cases, agency
tokens, idempotency records, counters), topics, subscriptions and queues come
back. Each request is appended as it arrives, so a ``kill -9`` loses nothing
already answered. Reads and transient messaging (SQS send/receive/delete, SNS
publish) are not recorded: a replayed publish would send its emails again, and
SQS receipt handles do not survive a replay. Queues therefore restart empty (the
replayed S3 notifications are purged too); what must not be lost between them is
already held durably by its consumer (SNS delivery and the rules inbox, SQLite).

No back door: moto listens on 127.0.0.1 only (``oneeye up`` never binds it to the
LAN, whatever ``--host``), and :class:`MotoGate` stands in front of it: moto's own
admin API (``/moto-api/``: the recorder's download/upload of the whole state,
reset, seed, the dashboard) answers a plain 404 unless the request carries
:data:`ADMIN_HEADER` with this server's random per-start secret (only the
stack's own code holds it), and no response carries an ``Access-Control-*``
header, so no web page the operator opens (any ``Origin``) may read moto's
answers. The phone reaches S3 only through the HTTP API's ``/s3-upload/`` proxy.

One patch, on purpose: with ``MessageStructure=json`` SNS gives each protocol its
own text (``email``, ``sms``…), but moto hands an SQS subscriber only the ``sqs``
or ``default`` text. The outbox needs the email *and* the SMS text that AWS would
send, so for the outbox's own tap queues (and only those) the subscriber gets
the whole structure; the outbox then picks the per-protocol texts from it.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import secrets as secrets_mod
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from oneeye import aws
from oneeye.cloud import grants
from oneeye.cloud.agencies import Agencies
from oneeye.cloud.dal import keys
from oneeye.errors import ConfigError, NotFound, OneEyeError
from oneeye.local.post_policy import PostPolicyGuard

log = logging.getLogger(__name__)

_tap_queues: set[str] = set()
_patched = False
_direct_patched = False
_patch_lock = threading.Lock()


#: Operations that change nothing lasting (reads) or only move messages.
_TRANSIENT = {"SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch",
              "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "PurgeQueue",
              "Publish", "PublishBatch", "SendEmail", "SendRawEmail"}
_READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "TransactGet",
                  "Receive", "Head")


def changes_state(method: str, headers: Any, body: bytes) -> bool:
    """Whether an AWS API request may change lasting state (and so must be recorded)."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    target = headers.get("X-Amz-Target") or ""  # JSON protocols: "DynamoDB_20120810.PutItem"
    action = target.rsplit(".", 1)[-1] if target else ""
    if not action and "x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]  # query API
    if not action:
        return True  # S3 (REST): PUT/POST/DELETE
    return action not in _TRANSIENT and not action.startswith(_READ_PREFIXES)


def _recorder_class() -> type:
    from moto.moto_api._internal.recorder.models import Recorder

    class StateRecorder(Recorder):  # type: ignore[misc]
        """moto's recorder, writing only requests that change lasting state to ``path``."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self._location = str(path)
            self._user_enabled = True

        def _record_request(self, request: Any, body: bytes | None = None) -> None:
            if not self._user_enabled or request.raw_path.startswith("/moto-api/"):
                return
            if body is None:  # read it the way moto's recorder does, and put it back
                try:
                    body = request.environ["wsgi.input"].read(
                        int(request.headers["Content-Length"]))
                except (AttributeError, KeyError, ValueError):
                    body = b""
                if isinstance(body, str):
                    body = body.encode("utf-8")
                request.environ["wsgi.input"] = io.BytesIO(body)
            if changes_state(request.method, request.headers, body):
                super()._record_request(request, body=body)

    return StateRecorder


#: The local stack's only credentials (``FAKE_CREDENTIALS``): access key → secret.
LOCAL_SECRETS = {"testing": "testing"}
#: The request header that opens moto's admin API (its value: :attr:`MotoServer.admin_secret`).
ADMIN_HEADER = "X-OneEye-Moto-Admin"
_ADMIN_ENVIRON = "HTTP_" + ADMIN_HEADER.upper().replace("-", "_")

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class MotoGate:
    """WSGI middleware in front of moto: its admin API only with the secret, no CORS.

    ``/moto-api/…`` (and the ``motoapi`` host moto also routes there) without
    :data:`ADMIN_HEADER` = ``admin_secret`` answers ``404 not found``, the same
    as a path that does not exist. ``Access-Control-*`` headers are dropped from
    every answer (moto's flask-cors reflects any ``Origin``; bucket CORS rules
    too): the stack's pages never read moto cross-origin.
    """

    def __init__(self, app: WsgiApp, admin_secret: str) -> None:
        self.app = app
        self.admin_secret = admin_secret

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", "")).lower()
        host = str(environ.get("HTTP_HOST", "")).lower()
        if ("moto-api" in path or host.startswith("motoapi")) and not hmac.compare_digest(
                str(environ.get(_ADMIN_ENVIRON, "")).encode(), self.admin_secret.encode()):
            log.warning("moto admin API refused: %s %s", environ.get("REQUEST_METHOD"),
                        path[:200])
            start_response("404 NOT FOUND", [("Content-Type", "text/plain"),
                                             ("Content-Length", "9")])
            return [b"not found"]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, exc_info)

        return self.app(environ, start)


class MotoServer:
    def __init__(self, host: str, port: int, *, secrets: Mapping[str, str] = LOCAL_SECRETS,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 recording: Path | None = None, agencies_table: str | None = None) -> None:
        from moto.server import ThreadedMotoServer

        self.host, self.port = host, port
        self._secrets, self._clock = secrets, clock
        self.recording = recording
        #: The agencies table POSTs' grants are checked against; None: no grant check (yet).
        self.agencies_table = agencies_table
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        #: Opens moto's admin API (:class:`MotoGate`); random per start, never stored.
        self.admin_secret = secrets_mod.token_urlsafe(32)
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)

    @property
    def admin_headers(self) -> dict[str, str]:
        """The header that opens moto's ``/moto-api/`` on this server (the stack's own use)."""
        return {ADMIN_HEADER: self.admin_secret}

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
        if self.recording is not None:
            self._restore(self.recording)
        return self

    def _restore(self, path: Path) -> None:
        """Replay ``path`` (if any) into the fresh server, then record into it from now on."""
        import moto.moto_api

        path.parent.mkdir(parents=True, exist_ok=True)
        replayed = _drop_torn_lines(path)
        recorder = _recorder_class()(path)
        moto.moto_api.recorder = recorder  # moto looks it up on every request
        if replayed:
            log.info("restoring the AWS stand-ins' state: replaying %d recorded requests",
                     replayed)
            recorder.replay_recording(target_host=self.url)  # does not record itself
            _purge_queues()
            log.info("moto state restored from %s", path)

    def _serve(self) -> None:
        """ThreadedMotoServer's own entry, with the gate and the POST-policy check in front."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server


        srv: Any = self._server
        app = MotoGate(PostPolicyGuard(DomainDispatcherApplication(create_backend_app),
                                       self._secrets, clock=self._clock,
                                       grant_check=self.grant_refusal), self.admin_secret)
        srv._server = make_server(self.host, self.port, app, True,
                                  request_handler=MotoRequestHandler)
        srv._server_ready_event.set()
        srv._server.serve_forever()

    def grant_refusal(self, bucket: str, key: str) -> str | None:
        """Why a policy-valid POST of ``key`` is refused: its grant's agency token is revoked.

        Only phone uploads (``uploads/missing/…``) have grants. No table set or no grant
        record: nothing to add (the policy guards the POST, the indexer refuses an
        ungranted object). A lookup that fails answers why, so the POST is refused.
        """

        upload_id = grants.upload_id_of(key)
        table = self.agencies_table
        if upload_id is None or table is None:
            return None
        # AWS said no or did not answer; a malformed record; a mapped AwsError
        failed: tuple[type[Exception], ...] = (*aws.failures(), OneEyeError, ValueError)
        try:
            try:
                with aws.errors():
                    body = self._client("s3").get_object(
                        Bucket=bucket, Key=keys.status(upload_id))["Body"].read()
            except NotFound:
                return None
            grant = json.loads(body)
            if not isinstance(grant, dict):
                return f"the grant of upload {upload_id} is not a record"
            return grants.revocation(grant, Agencies(table, dynamodb=self._client("dynamodb")))
        except failed as exc:
            return f"the grant of upload {upload_id} could not be checked ({exc})"

    def _client(self, service: str) -> Any:
        """A boto3 client of this server itself (short timeouts: a request is waiting)."""
        import boto3
        from botocore.config import Config


        with self._clients_lock:
            if service not in self._clients:
                access, secret = next(iter(self._secrets.items()))
                self._clients[service] = boto3.session.Session().client(
                    service, endpoint_url=self.url, region_name=aws.region(),
                    aws_access_key_id=access, aws_secret_access_key=secret,
                    config=Config(connect_timeout=2, read_timeout=10,
                                  retries={"max_attempts": 2, "mode": "standard"},
                                  s3={"addressing_style": "path"},
                                  signature_version="s3v4" if service == "s3" else None))
            return self._clients[service]

    def stop(self) -> None:
        try:
            self._server.stop()
        except Exception:  # stopping a test/demo server: nothing left to protect
            log.debug("moto server stop", exc_info=True)


def _drop_torn_lines(path: Path) -> int:
    """Keep the recording's complete lines (a kill -9 may tear the last); return how many."""
    if not path.is_file():
        path.touch(mode=0o600)
        return 0
    lines = path.read_bytes().splitlines()
    good = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            continue
        good.append(line)
    if len(good) != len(lines):
        log.warning("moto recording %s: dropped %d torn line(s)", path, len(lines) - len(good))
        path.write_bytes(b"".join(line + b"\n" for line in good))
    return len(good)


def _purge_queues() -> None:
    """Empty every queue after a replay: replayed S3 puts re-sent their notifications."""

    sqs = aws.client("sqs")
    for url in sqs.list_queues().get("QueueUrls", []):
        try:
            sqs.purge_queue(QueueUrl=url)
        except Exception as exc:  # a queue that cannot be purged only repeats old work
            log.warning("could not purge %s after the replay: %s", url, exc)


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


#: The callback of :func:`tap_direct_messages`: ``(kind, to, subject, body, message_id,
#: event_id)``.
DirectSink = Callable[[str, str, "str | None", str, str, "str | None"], None]
_direct_sinks: list[DirectSink] = []


def tap_direct_messages(sink: DirectSink) -> None:
    """Hand every SMS published to a phone number and every SES email to ``sink``.

    Real SNS and SES deliver these to phones and mailboxes; moto only keeps them in memory.
    The local stack's alert outbox is their phone and mailbox (``amber_alert`` sends the case
    contact's messages this way, with the same calls as in AWS). A sink that fails is
    logged; the API call still succeeds, as the message was accepted.
    """
    global _direct_patched
    from moto.ses.models import SESBackend
    from moto.sns.models import SNSBackend

    with _patch_lock:
        _direct_sinks.append(sink)
        if _direct_patched:
            return
        publish, send_email = SNSBackend.publish, SESBackend.send_email

        def sns_publish(self: Any, message: str, arn: str | None,
                        phone_number: str | None = None, *args: Any, **kw: Any) -> str:
            message_id = publish(self, message, arn, phone_number, *args, **kw)
            if phone_number:
                attrs = kw.get("message_attributes") or {}
                event = attrs.get("event_id", {}) if isinstance(attrs, dict) else {}
                _deliver("sms", phone_number, None, message, str(message_id),
                         event.get("Value") or event.get("StringValue"))
            return str(message_id)

        def ses_send(self: Any, source: str, subject: str, body: str,
                     destinations: dict[str, list[str]]) -> Any:
            message = send_email(self, source, subject, body, destinations)
            for addresses in destinations.values():
                for to in addresses:
                    _deliver("email", to, subject, body, str(message.id), None)
            return message

        SNSBackend.publish = sns_publish  # type: ignore[method-assign]
        SESBackend.send_email = ses_send  # type: ignore[method-assign]
        _direct_patched = True


def _deliver(kind: str, to: str, subject: str | None, body: str, message_id: str,
             event_id: str | None) -> None:
    for sink in list(_direct_sinks):
        try:
            sink(kind, to, subject, body, message_id, event_id)
        except Exception:  # moto accepted the message; a sink's fault must not fail the call
            log.exception("alert outbox: could not record the %s to a direct recipient", kind)


def untap_direct_messages(sink: DirectSink) -> None:
    """Stop handing direct messages to ``sink`` (the patch stays; it is inert without sinks)."""
    with _patch_lock:
        if sink in _direct_sinks:
            _direct_sinks.remove(sink)
