"""``POST /sns``: SNS HTTP deliveries from the desk topic.

Every message is verified (:class:`oneeye.sns.Verifier`) before anything else
happens. Confirmations of allowed topics are confirmed by visiting the
SubscribeURL — only an https SNS URL, or a host the operator listed for the
local stack. A notification's ``Message`` must be a ``oneeye.desk/1`` event; it
is stored (duplicates ignored) and pushed to the Socket.IO room of its site.
Anything wrong with a message is answered with a 4xx and one log line — never a
5xx, so a bad sender cannot make the dashboard look broken. The one 5xx left is
our own failure (the database is down): SNS then retries the delivery later,
which is what "nothing lost" needs.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Response, jsonify, request

from dashboard import devices
from dashboard.services import services
from oneeye import sns
from oneeye.errors import EventError, SignatureError
from oneeye.events import DESK, DeskEvent, loads, parse

log = logging.getLogger(__name__)
bp = Blueprint("sns", __name__)


def _reply(status: int, result: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"result": result, **extra}), status


@bp.route("/sns", methods=["POST"])
def receive() -> tuple[Response, int]:
    try:
        msg = loads(request.get_data(cache=False))
    except EventError:
        log.warning("sns: rejected body that is not JSON from %s", request.remote_addr)
        return _reply(400, "not JSON")
    if not isinstance(msg, dict):
        return _reply(400, "not a JSON object")
    header_type = request.headers.get("x-amz-sns-message-type")
    if header_type is not None and header_type != msg.get("Type"):
        log.warning("sns: header type %r does not match body %r", header_type, msg.get("Type"))
        return _reply(400, "message type header does not match body")
    try:
        services().verifier.verify(msg)
    except SignatureError as exc:
        log.warning("sns: rejected %s %s: %s", msg.get("Type"), msg.get("MessageId"), exc)
        return _reply(403, "rejected", reason=str(exc))
    if msg["Type"] == sns.SUBSCRIPTION_CONFIRMATION:
        return _confirm(msg)
    if msg["Type"] == sns.UNSUBSCRIBE_CONFIRMATION:
        log.info("sns: unsubscribed from %s", msg["TopicArn"])
        return _reply(200, "noted")
    return _notification(msg)


def _confirm(msg: dict[str, Any]) -> tuple[Response, int]:
    url = msg.get("SubscribeURL", "")
    parts = urlsplit(url)
    local_ok = parts.netloc in services().settings.confirm_hosts
    if not (sns.is_sns_url(url) or local_ok):
        log.warning("sns: SubscribeURL %r is not an SNS URL; not confirming", url)
        return _reply(400, "SubscribeURL is not an SNS URL")
    try:
        resp = requests.get(url, timeout=10, allow_redirects=False)
        resp.raise_for_status()
    except requests.RequestException as exc:
        # a 4xx makes SNS (and the local stack) send the confirmation again later
        log.warning("sns: confirming %s failed: %s", msg["TopicArn"], exc)
        return _reply(424, "confirmation failed", reason=str(exc))
    log.info("sns: confirmed subscription to %s", msg["TopicArn"])
    return _reply(200, "confirmed")


def _notification(msg: dict[str, Any]) -> tuple[Response, int]:
    try:
        event = parse(msg.get("Message", ""), expect=DESK)
    except EventError as exc:
        log.warning("sns: notification %s is not a desk event: %s", msg.get("MessageId"), exc)
        return _reply(400, "invalid event", reason=str(exc))
    assert isinstance(event, DeskEvent)
    attr = (msg.get("MessageAttributes") or {}).get("site_id")
    if isinstance(attr, dict) and attr.get("Value") not in (None, event.site_id):
        log.warning("sns: event %s site %s differs from attribute %r", event.event_id,
                    event.site_id, attr.get("Value"))
        return _reply(400, "site_id attribute does not match the event")
    parts = services()
    if event.kind == "device_status":  # state, not an event: only transitions are stored
        devices.health(parts.store, parts.live.emit, event)
        return _reply(200, "device updated", event_id=event.event_id)
    if event.kind in ("device_offline", "device_online"):
        record = devices.transition(parts.store, parts.live.emit, event)
    else:
        record = parts.store.events.add(event)
        if record is not None:
            parts.live.publish(_in_its_visit(record))
    if record is None:
        log.info("sns: duplicate event %s ignored", event.event_id)
        return _reply(200, "duplicate", event_id=event.event_id)
    log.info("sns: %s %s for site %s", event.kind, event.event_id, event.site_id)
    return _reply(200, "stored", event_id=event.event_id)


def _in_its_visit(record: dict[str, Any]) -> dict[str, Any]:
    """A new sighting that continues a decided visit takes the visit's verdict (stored as
    its own feedback too) and carries the visit's mark as ``visit``, so every desk shows it
    on the same card, greyed and silent after "Not this person"."""
    if not record["event"].get("match"):
        return record
    store = services().store
    mark = store.visits.join(record, services().settings.visit_window_s)
    if mark is None:
        return record
    return {**(store.events.get(record["event_id"]) or record), "visit": mark}
