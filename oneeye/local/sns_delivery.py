"""SNS-faithful HTTP(S) delivery from the desk topic (moto alone gets this wrong).

moto POSTs to HTTP subscribers without a SubscriptionConfirmation, drops the
message attributes and gives up when the endpoint is down. Instead the stack
subscribes an SQS queue to the topic (raw delivery off, so the SNS envelope
with ``MessageAttributes`` arrives intact) and this module plays SNS for the
HTTP subscribers it manages:

1. ``subscribe()`` sends a signed ``SubscriptionConfirmation`` whose
   ``SubscribeURL`` points at :meth:`SnsDelivery.confirm` (served by the HTTP API
   stand-in at ``/sns/confirm``); nothing else is delivered until it is visited.
2. Every envelope from the queue becomes one signed ``Notification`` per
   subscription whose ``FilterPolicy`` matches, written to SQLite *before* the SQS
   message is deleted, so a crash or restart loses nothing.
3. A worker per subscription POSTs in order and, on failure, backs off
   exponentially (``sns.first_retry_s`` … ``sns.max_retry_s``) and retries until
   delivered — a dashboard down for a minute gets everything after.

Deviation from SNS, on purpose: SNS drops messages published while a subscription
is still pending; here they wait for the confirmation, so a slow dashboard start
does not lose the first arrivals.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from oneeye import sns
from oneeye.local.filter_policy import matches as policy_matches
from oneeye.local.settings import SnsDeliverySettings
from oneeye.types import utc_now

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
  arn TEXT PRIMARY KEY, topic_arn TEXT NOT NULL, endpoint TEXT NOT NULL,
  filter_policy TEXT, token TEXT NOT NULL, confirmed INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL, UNIQUE (topic_arn, endpoint));
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT, sub_arn TEXT NOT NULL, kind TEXT NOT NULL,
  message_id TEXT NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  first_at REAL NOT NULL, next_at REAL NOT NULL, delivered_at REAL, failed INTEGER DEFAULT 0,
  last_error TEXT, UNIQUE (sub_arn, message_id));
CREATE INDEX IF NOT EXISTS due ON deliveries (sub_arn, delivered_at, failed, id);
"""


@dataclass(frozen=True)
class Delivery:
    """One message to one subscriber: its attempts so far and how the last one failed."""

    kind: str                 # SubscriptionConfirmation | Notification
    message_id: str
    attempts: int
    delivered: bool
    last_error: str | None


@dataclass(frozen=True)
class Subscription:
    arn: str
    topic_arn: str
    endpoint: str
    filter_policy: dict[str, Any] | None
    token: str
    confirmed: bool


class Signer:
    """The stack's SNS signing identity: a key + self-signed cert kept under ``sns_dir``."""

    def __init__(self, sns_dir: Path, region: str, version: str = "2") -> None:
        sns_dir.mkdir(parents=True, exist_ok=True)
        self.key_file = sns_dir / "signing-key.pem"
        self.cert_file = sns_dir / "signing-cert.pem"
        if not (self.key_file.is_file() and self.cert_file.is_file()):
            key_pem, cert_pem = sns.generate_signing_cert()
            self.key_file.touch(mode=0o600)
            self.key_file.write_bytes(key_pem)
            self.cert_file.write_bytes(cert_pem)
        self._key = self.key_file.read_bytes()
        # An https SNS-shaped URL: the dashboard accepts it only because it is
        # configured to pin this exact URL to cert_file (never fetched).
        self.cert_url = (f"https://sns.{region}.amazonaws.com/"
                         "SimpleNotificationService-oneeye-local.pem")
        self.version = version

    def sign(self, msg: dict[str, Any]) -> dict[str, Any]:
        return sns.sign(msg, self._key, self.cert_url, version=self.version)


class SnsDelivery:
    def __init__(self, db_path: Path, signer: Signer, *, confirm_base_url: str,
                 settings: SnsDeliverySettings | None = None, deliver: bool = True,
                 poll_s: float = 1.0) -> None:
        """``deliver=False``: a control handle (subscribe, confirm, retry_now) on the same
        SQLite file as the delivering process, which sees its changes within ``poll_s``."""
        self.signer = signer
        self.settings = settings or SnsDeliverySettings()
        self.confirm_base_url = confirm_base_url.rstrip("/")
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._deliver, self._poll_s = deliver, poll_s
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._http = requests.Session()

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(self, topic_arn: str, endpoint: str,
                  filter_policy: dict[str, Any] | None = None) -> Subscription:
        """Add (or keep) an HTTP(S) subscription; a new or pending one gets a confirmation."""
        policy = json.dumps(filter_policy, sort_keys=True) if filter_policy else None
        with self._lock:
            row = self._db.execute("SELECT arn, confirmed FROM subscriptions WHERE topic_arn=? "
                                   "AND endpoint=?", (topic_arn, endpoint)).fetchone()
            if row is None:
                arn = f"{topic_arn}:{uuid.uuid4()}"
                token = uuid.uuid4().hex + uuid.uuid4().hex
                self._db.execute("INSERT INTO subscriptions VALUES (?,?,?,?,?,0,?)",
                                 (arn, topic_arn, endpoint, policy, token, utc_now()))
                self._enqueue_confirmation(arn, topic_arn, token)
            else:
                arn = row[0]
                self._db.execute("UPDATE subscriptions SET filter_policy=? WHERE arn=?",
                                 (policy, arn))
        sub = self.subscription(arn)
        assert sub is not None
        log.info("SNS %s subscription %s → %s%s", "confirmed" if sub.confirmed else "pending",
                 topic_arn.rsplit(":", 1)[-1], endpoint,
                 f" (filter {policy})" if policy else "")
        self._start_worker(arn)
        return sub

    def subscription(self, arn: str) -> Subscription | None:
        row = self._db.execute("SELECT arn, topic_arn, endpoint, filter_policy, token, confirmed "
                               "FROM subscriptions WHERE arn=?", (arn,)).fetchone()
        if row is None:
            return None
        return Subscription(row[0], row[1], row[2], json.loads(row[3]) if row[3] else None,
                            row[4], bool(row[5]))

    def subscriptions(self, topic_arn: str | None = None) -> list[Subscription]:
        arns = [r[0] for r in self._db.execute(
            "SELECT arn FROM subscriptions WHERE ?1 IS NULL OR topic_arn=?1 ORDER BY created_at",
            (topic_arn,))]
        return [s for s in (self.subscription(a) for a in arns) if s is not None]

    def confirm(self, topic_arn: str, token: str) -> str | None:
        """The ``ConfirmSubscription`` action behind SubscribeURL; returns the ARN or None."""
        with self._lock:
            row = self._db.execute("SELECT arn FROM subscriptions WHERE topic_arn=? AND token=?",
                                   (topic_arn, token)).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE subscriptions SET confirmed=1 WHERE arn=?", (row[0],))
        log.info("SNS subscription %s confirmed", row[0])
        self._wake_worker(row[0])
        return str(row[0])

    def unsubscribe(self, arn: str) -> bool:
        with self._lock:
            n = self._db.execute("DELETE FROM subscriptions WHERE arn=?", (arn,)).rowcount
            self._db.execute("DELETE FROM deliveries WHERE sub_arn=? AND delivered_at IS NULL",
                             (arn,))
        self._wake_worker(arn)
        return bool(n)

    # -- publishing ------------------------------------------------------------------

    def accept_envelope(self, envelope: dict[str, Any]) -> int:
        """Queue one SNS envelope (from the SQS subscription) for every matching subscriber."""
        topic_arn = envelope["TopicArn"]
        attributes = envelope.get("MessageAttributes") or {}
        queued = 0
        for sub in self.subscriptions(topic_arn):
            if sub.filter_policy and not policy_matches(sub.filter_policy, attributes):
                continue
            msg: dict[str, Any] = {"Type": sns.NOTIFICATION, "MessageId": envelope["MessageId"],
                                   "TopicArn": topic_arn, "Message": envelope["Message"],
                                   "Timestamp": envelope.get("Timestamp") or utc_now()}
            if envelope.get("Subject"):
                msg["Subject"] = envelope["Subject"]
            msg = self.signer.sign(msg)
            msg["UnsubscribeURL"] = self._url("Unsubscribe", SubscriptionArn=sub.arn)
            if attributes:
                msg["MessageAttributes"] = attributes
            if self._insert(sub.arn, sns.NOTIFICATION, msg):
                queued += 1
            self._wake_worker(sub.arn)
        return queued

    def retry_now(self, endpoint: str) -> None:
        """Skip the backoff for ``endpoint`` (the stack just saw it come up; SNS would wait)."""
        for sub in self.subscriptions():
            if sub.endpoint == endpoint:
                with self._lock:
                    self._db.execute("UPDATE deliveries SET next_at=? WHERE sub_arn=? AND "
                                     "delivered_at IS NULL AND failed=0", (time.time(), sub.arn))
                self._wake_worker(sub.arn)

    def delivered_kinds(self, since: float) -> dict[str, int]:
        """Desk-event kinds delivered since ``since`` (Unix s), for the shutdown summary."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM deliveries WHERE kind='Notification' AND "
                                    "delivered_at >= ?", (since,)).fetchall()
        counts: dict[str, int] = {}
        for (body,) in rows:
            try:
                kind = str(json.loads(json.loads(body)["Message"]).get("kind", "other"))
            except (ValueError, KeyError, TypeError, AttributeError):
                kind = "other"
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def deliveries(self, arn: str | None = None) -> list[Delivery]:
        """Every queued or finished delivery (of subscription ``arn``, or all), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, message_id, attempts, delivered_at IS NOT NULL, last_error FROM "
                "deliveries WHERE (?1 IS NULL OR sub_arn=?1) ORDER BY id", (arn,)).fetchall()
        return [Delivery(kind, mid, int(n), bool(done), err) for kind, mid, n, done, err in rows]

    def pending(self, arn: str | None = None) -> int:
        row = self._db.execute("SELECT count(*) FROM deliveries WHERE delivered_at IS NULL AND "
                               "failed=0 AND (?1 IS NULL OR sub_arn=?1)", (arn,)).fetchone()
        return int(row[0])

    def _enqueue_confirmation(self, arn: str, topic_arn: str, token: str) -> None:
        msg = {"Type": sns.SUBSCRIPTION_CONFIRMATION, "MessageId": str(uuid.uuid4()),
               "Token": token, "TopicArn": topic_arn,
               "Message": f"You have chosen to subscribe to the topic {topic_arn}.\nTo confirm "
                          "the subscription, visit the SubscribeURL included in this message.",
               "SubscribeURL": self._url("ConfirmSubscription", TopicArn=topic_arn, Token=token),
               "Timestamp": utc_now()}
        self._insert(arn, sns.SUBSCRIPTION_CONFIRMATION, self.signer.sign(msg))

    def _url(self, action: str, **params: str) -> str:
        return f"{self.confirm_base_url}/sns/confirm?{urlencode({'Action': action, **params})}"

    def _insert(self, arn: str, kind: str, msg: dict[str, Any]) -> bool:
        now = time.time()
        cur = self._db.execute(
            "INSERT OR IGNORE INTO deliveries (sub_arn, kind, message_id, body, first_at, "
            "next_at) VALUES (?,?,?,?,?,?)", (arn, kind, msg["MessageId"], json.dumps(msg),
                                              now, now))
        return bool(cur.rowcount)

    # -- delivery workers ------------------------------------------------------------

    def start(self) -> None:
        """Deliver every subscription's backlog, and pick up new subscriptions as they come
        (another process may add them: ``oneeye up`` subscribes, this process delivers)."""
        for sub in self.subscriptions():
            self._start_worker(sub.arn)
        threading.Thread(target=self._watch_subscriptions, daemon=True,
                         name="sns-subscriptions").start()

    def _watch_subscriptions(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                for sub in self.subscriptions():
                    self._start_worker(sub.arn)
            except sqlite3.Error as exc:  # closing, or the file busy: look again later
                log.debug("SNS: subscription scan failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        for ev in list(self._wake.values()):
            ev.set()
        for t in list(self._threads.values()):
            t.join(timeout=self.settings.timeout_s + 1)
        self._db.close()

    def _start_worker(self, arn: str) -> None:
        with self._lock:
            if not self._deliver or arn in self._threads or self._stop.is_set():
                return
            self._wake[arn] = threading.Event()
            t = threading.Thread(target=self._worker, args=(arn,), daemon=True,
                                 name=f"sns-{arn[-8:]}")
            self._threads[arn] = t
        t.start()

    def _wake_worker(self, arn: str) -> None:
        ev = self._wake.get(arn)
        if ev is not None:
            ev.set()

    def _worker(self, arn: str) -> None:
        wake = self._wake[arn]
        while not self._stop.is_set():
            wake.clear()
            delay = self._deliver_due(arn)
            if delay is None:
                if self.subscription(arn) is None:
                    return
                delay = 30.0
            # another process may confirm, unsubscribe or retry_now in the shared file
            wake.wait(min(delay, self._poll_s))

    def _next_due(self, arn: str) -> tuple[int, str, str, int, float, float] | None:
        sub = self.subscription(arn)
        if sub is None:
            return None
        kinds = (sns.SUBSCRIPTION_CONFIRMATION, sns.NOTIFICATION) if sub.confirmed else \
            (sns.SUBSCRIPTION_CONFIRMATION, "-")
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, body, attempts, first_at, next_at FROM deliveries WHERE "
                "sub_arn=? AND delivered_at IS NULL AND failed=0 AND kind IN (?,?) "
                "ORDER BY id LIMIT 1", (arn, *kinds)).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3], row[4], row[5])

    def _deliver_due(self, arn: str) -> float | None:
        """Deliver in order until empty or a failure; returns seconds to wait, None if idle."""
        while not self._stop.is_set():
            item = self._next_due(arn)
            sub = self.subscription(arn)
            if item is None or sub is None:
                return None
            did, kind, body, attempts, first_at, next_at = item
            now = time.time()
            if next_at > now:
                return next_at - now
            error = self._post(sub, kind, body)
            with self._lock:
                if error is None:
                    self._db.execute("UPDATE deliveries SET delivered_at=?, attempts=? WHERE id=?",
                                     (time.time(), attempts + 1, did))
                    continue
                backoff = float(min(self.settings.max_retry_s,
                                    self.settings.first_retry_s * 2.0 ** min(attempts, 20)))
                backoff *= random.uniform(0.8, 1.0)  # jitter: a recovered endpoint is not stormed
                gave_up = now - first_at > self.settings.give_up_after_s
                self._db.execute("UPDATE deliveries SET attempts=?, next_at=?, last_error=?, "
                                 "failed=? WHERE id=?",
                                 (attempts + 1, now + backoff, error, int(gave_up), did))
            # The first minute of failures is usually a subscriber still starting: INFO.
            level = logging.INFO if now - first_at < 60 else logging.WARNING
            log.log(level, "SNS delivery of %s to %s failed (attempt %d, retry in %.1f s): %s",
                    kind, sub.endpoint, attempts + 1, backoff, error)
            if gave_up:
                log.error("SNS delivery to %s abandoned after %.0f s", sub.endpoint,
                          now - first_at)
            return backoff
        return None

    def _post(self, sub: Subscription, kind: str, body: str) -> str | None:
        msg = json.loads(body)
        headers = {"x-amz-sns-message-type": kind, "x-amz-sns-message-id": msg["MessageId"],
                   "x-amz-sns-topic-arn": sub.topic_arn,
                   "Content-Type": "text/plain; charset=UTF-8",
                   "User-Agent": "Amazon Simple Notification Service Agent"}
        if kind == sns.NOTIFICATION:
            headers["x-amz-sns-subscription-arn"] = sub.arn
        try:
            resp = self._http.post(sub.endpoint, data=body.encode(), headers=headers,
                                   timeout=self.settings.timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"
        # SNS counts only 2xx as delivered (3xx/4xx/5xx are retried under its policy).
        if 200 <= resp.status_code < 300:
            return None
        return f"HTTP {resp.status_code}: {resp.text[:200]}"
