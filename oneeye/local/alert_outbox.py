"""Alerts topic → the alert outbox (local email/SMS sink), with a real SMTP hop for email.

Not to be confused with the edge's event :class:`oneeye.edge.comms.outbox.Outbox` (the SQLite
queue of matches waiting for the broker): this one is where the local stack "sends"
the amber alerts that SNS would send as email and SMS in AWS.

An SQS queue subscribed to the alerts topic stands in for SNS's email and SMS
delivery. For each alert the alert outbox reads the topic's ``email`` / ``email-json``
/ ``sms`` subscriptions from SNS (``oneeye subscribe`` makes them), honours their
FilterPolicy, sends each email with ``smtplib`` to the SMTP sink (aiosmtpd, which
stores it under ``var/local/mail/``) and appends one JSON line per recipient to
``var/local/alert_outbox.jsonl``::

    {"kind": "email"|"sms", "to", "subject", "body", "sent_at", "event_id", "site_id"}

The case's own contact is messaged by ``amber_alert`` directly (SNS ``Publish`` to a phone
number, SES ``SendEmail``), as in AWS; the local moto hands those to
:meth:`AlertOutbox.handle_direct` (:func:`oneeye.local.moto_server.tap_direct_messages`),
which writes them here with ``"direct": true`` and ``message_id`` (SNS/SES MessageId).

``event_id`` is the SNS MessageId of the alert; ``site_id`` its ``site_id`` message
attribute (the dashboard's ``/alerts`` shows a user only their sites' lines). A
failure (SMTP down, SNS not answering) raises, so the SQS message stays and is
retried; lines already written for that message are not written twice.
"""

from __future__ import annotations

import json
import logging
import smtplib
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from oneeye import aws, sms
from oneeye.contacts import mask
from oneeye.local.filter_policy import matches as policy_matches
from oneeye.types import utc_now

log = logging.getLogger(__name__)

SENDER = "OneEye alerts <no-reply@oneeye.local>"
#: The alert outbox's file name in the local stack's ``var_dir``.
ALERT_OUTBOX_FILE = "alert_outbox.jsonl"


def texts_of(envelope: dict[str, Any]) -> dict[str, str]:
    """Per-protocol texts of an alert: the MessageStructure json if present, else one text."""
    message = str(envelope.get("Message", ""))
    try:
        structure = json.loads(message)
    except json.JSONDecodeError:
        structure = None
    if isinstance(structure, dict) and isinstance(structure.get("default"), str):
        default = structure["default"]
        return {"email": str(structure.get("email") or default),
                "sms": _one_sms(str(structure.get("sms") or default))}
    return {"email": message, "sms": _one_sms(message)}


def _one_sms(text: str) -> str:
    # amber_alert's SMS is one segment already; any other text is cut to one, as OneEye's
    # SMS never spans two (oneeye.sms).
    return text if sms.fits_one(text) else sms.one_segment([("", text, "")])


class AlertOutbox:
    def __init__(self, path: Path, *, topic_arn: str, smtp_host: str, smtp_port: int) -> None:
        self.path = path
        self.topic_arn = topic_arn
        self.smtp_host, self.smtp_port = smtp_host, smtp_port
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def handle_envelope(self, envelope: dict[str, Any]) -> int:
        """Deliver one alert to every matching subscriber; returns lines written."""
        event_id = str(envelope.get("MessageId", ""))
        subject = str(envelope.get("Subject") or "OneEye alert")
        texts = texts_of(envelope)
        attributes = envelope.get("MessageAttributes") or {}
        # The site the alert is about (set by amber_alert from the verified device's site):
        # the outbox page shows each user only their sites' emails and SMS.
        site = attributes.get("site_id", {}).get("Value") if isinstance(
            attributes.get("site_id"), dict) else None
        done = self._done(event_id)
        written = 0
        for protocol, endpoint, policy in self._subscribers():
            if policy and not policy_matches(policy, attributes):
                continue
            kind = "sms" if protocol == "sms" else "email"
            if (kind, endpoint) in done:
                continue  # a retried SQS message: this recipient already has it
            body = texts[kind]
            if kind == "email":
                if protocol == "email-json":
                    body = json.dumps(envelope)
                self._send_email(endpoint, subject, body)
            self._append({"kind": kind, "to": endpoint, "subject": subject if kind == "email"
                          else None, "body": body, "sent_at": utc_now(), "event_id": event_id,
                          "site_id": site})
            written += 1
        if written == 0 and not done:
            log.warning("alert %s: no email/SMS subscriber on the alerts topic (add one with "
                        "`oneeye subscribe --email …`)", event_id)
        return written

    def take_direct_messages(self) -> None:
        """Receive the in-process moto's direct SMS and SES emails (:meth:`handle_direct`)."""
        from oneeye.local.moto_server import tap_direct_messages

        tap_direct_messages(lambda kind, to, subject, body, message_id, event_id:
                            self.handle_direct(kind, to, subject, body,
                                               message_id=message_id, event_id=event_id))

    def handle_direct(self, kind: str, to: str, subject: str | None, body: str, *,
                      message_id: str, event_id: str | None = None) -> None:
        """One message sent straight to a recipient, not through the alerts topic: the
        case contact's SMS (SNS ``Publish`` to a ``PhoneNumber``) or email (SES
        ``SendEmail``), as the local moto delivered them (:func:`tap_direct_messages`).
        Written with ``"direct": true``; ``site_id`` is None (the agency's message, not a
        site's: bank users' alert pages do not list it)."""
        if kind == "email":
            self._send_email(to, subject or "OneEye alert", body)
        self._append({"kind": kind, "to": to, "subject": subject if kind == "email" else None,
                      "body": body, "sent_at": utc_now(), "event_id": event_id,
                      "site_id": None, "direct": True, "message_id": message_id})

    def _subscribers(self) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
        sns = aws.client("sns")
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=self.topic_arn):
            for sub in page.get("Subscriptions", []):
                if sub["Protocol"] not in ("email", "email-json", "sms"):
                    continue
                attrs = sns.get_subscription_attributes(
                    SubscriptionArn=sub["SubscriptionArn"]).get("Attributes", {})
                policy = json.loads(attrs["FilterPolicy"]) if attrs.get("FilterPolicy") else None
                yield sub["Protocol"], sub["Endpoint"], policy

    def _send_email(self, to: str, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = SENDER, to, subject
        msg.set_content(body)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
            smtp.send_message(msg)

    def _append(self, entry: dict[str, Any]) -> None:
        with self._lock, self.path.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def _done(self, event_id: str) -> set[tuple[str, str]]:
        return {(e["kind"], e["to"]) for e in read(self.path) if e.get("event_id") == event_id}


def read(path: Path) -> list[dict[str, Any]]:
    """Alert outbox entries, oldest first; a torn last line (crash mid-write) is skipped."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


class SmtpSink:
    """aiosmtpd on ``host:port`` storing every message as ``mail_dir/<n>.eml``."""

    def __init__(self, host: str, port: int, mail_dir: Path) -> None:
        from aiosmtpd.controller import Controller

        mail_dir.mkdir(parents=True, exist_ok=True)
        self.mail_dir = mail_dir
        self.received = 0
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.received += 1
                name = f"{utc_now().replace(':', '')}-{sink.received:05d}.eml"
                (sink.mail_dir / name).write_bytes(envelope.original_content or b"")
                log.info("SMTP sink: mail to %s stored as %s",
                         ", ".join(mask(r) for r in envelope.rcpt_tos), name)
                return "250 Message accepted for delivery"

        # aiosmtpd logs every recipient in plain at INFO ("recip: …"): a case contact is
        # personal data, and OneEye's own lines name it masked
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller = Controller(Handler(), hostname=host, port=port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
