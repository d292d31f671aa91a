"""Real brokers and a real subscriber for the edge's MQTT tests (no mocks).

``BROKERS`` parametrises a test over the embedded amqtt broker and a private
Mosquitto started from /usr/sbin/mosquitto on a free port (which the test may
stop and restart — the system Mosquitto on 1883 must not be touched).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from oneeye.events import MatchEvent, utc_now
from oneeye.local.broker import MOSQUITTO, EmbeddedBroker, MosquittoBroker
from tests.net_support import free_port

BROKERS = ["amqtt", "mosquitto"]


def make_broker(kind: str, tmp: Path) -> EmbeddedBroker | MosquittoBroker:
    port = free_port()
    if kind == "amqtt":
        return EmbeddedBroker(port)
    if not Path(MOSQUITTO).is_file():
        pytest.fail(f"mosquitto is required for this test and was not found at {MOSQUITTO} "
                    "(apt-get install mosquitto)")
    return MosquittoBroker(port, state_dir=tmp / f"mosquitto-{port}")


def stop_broker(b: EmbeddedBroker | MosquittoBroker) -> None:
    if isinstance(b, MosquittoBroker):
        b.cleanup()
    else:
        b.stop()


class Subscriber:
    """paho-mqtt subscriber with a persistent session; resubscribes on every connect."""

    def __init__(self, port: int, topic: str = "oneeye/#", client_id: str | None = None) -> None:
        self.topic = topic
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"sub-{port}-{time.monotonic_ns()}",
                                  clean_session=False)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_disconnect = lambda *a: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscriber did not subscribe"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def matches(self) -> list[dict[str, Any]]:
        with self._cond:
            return [json.loads(p) for t, p in self.messages if t.endswith("/matches")]

    def event_ids(self) -> list[str]:
        return [m["event_id"] for m in self.matches()]

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> bool:
        """Whether ``predicate(self)`` came true within ``timeout`` s (woken on each message)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def payloads(self, n: int, timeout: float = 30.0) -> list[bytes]:
        """The payloads received once there are at least ``n`` (AssertionError on timeout)."""
        if not self.wait_for(lambda s: len(s.messages) >= n, timeout):
            raise AssertionError(f"{len(self.messages)} of {n} messages on {self.topic} "
                                 f"within {timeout:g} s")
        with self._cond:
            return [p for _, p in self.messages]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def event(i: int, device_id: str = "edge-test", **kw: Any) -> MatchEvent:
    base: dict[str, Any] = dict(
        device_id=device_id, site_id="site-1", camera_id="cam-1", observed_at=utc_now(),
        person_id=f"C-{1000 + i % 7}", watchlist="customers", distance=0.35, margin=0.1,
        bbox=(10, 60, 60, 10), track_id=i, frames_seen=3, gallery_version=1)
    base.update(kw)
    return MatchEvent(**base)


def make_pki(out: Path) -> dict[str, Path]:
    """A throwaway CA, a server cert for 127.0.0.1/localhost and two client certs
    (one signed by the CA, one self-signed) — generated per test, never stored."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem: str, key: Any, cert: x509.Certificate) -> None:
        (out / f"{stem}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (out / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(cn: str, issuer_key: Any, issuer: x509.Name | None, *, ca: bool = False,
              san: list[x509.GeneralName] | None = None) -> tuple[Any, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(name(cn))
             .issuer_name(issuer or name(cn)).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return key, b.sign(issuer_key or key, hashes.SHA256())

    ca_key, ca_cert = issue("oneeye-test-ca", None, None, ca=True)
    write("ca", ca_key, ca_cert)
    key, cert = issue("localhost", ca_key, ca_cert.subject, san=[
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    write("server", key, cert)
    key, cert = issue("edge-test", ca_key, ca_cert.subject)
    write("client", key, cert)
    key, cert = issue("intruder", None, None)
    write("rogue", key, cert)
    return {p.stem + p.suffix.replace(".", "_"): p for p in out.iterdir()}


def tls_mosquitto(tmp: Path, pki: dict[str, Path]) -> MosquittoBroker:
    return MosquittoBroker(free_port(), state_dir=tmp / "mosq-tls", extra_config=(
        f"cafile {pki['ca_crt']}\ncertfile {pki['server_crt']}\nkeyfile {pki['server_key']}\n"
        "require_certificate true\n"))
