"""Publishing ``oneeye.gallery/1`` on ``oneeye/gallery/updated`` (cloud → every edge).

``GALLERY_NOTIFY`` (:class:`oneeye.cloud.settings.IndexerSettings`) selects the transport:

- ``iot-data`` (AWS): ``iot-data:Publish`` through the one boto3 factory, QoS 1;
- ``mqtt://host:port`` (local stack, tests): a short-lived paho-mqtt client that
  connects, publishes with QoS 1, waits for the PUBACK and disconnects — the
  indexer runs once per upload, so a persistent connection buys nothing;
- ``none``: log only (a stack without devices).

A failed publish raises: the indexer's SQS message is then retried, and the
gallery version it wrote stays valid (edges also poll ``latest.json``).
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from oneeye import aws
from oneeye.errors import ConfigError, NotifyError
from oneeye.events import GalleryEvent
from oneeye.ids import new_id

log = logging.getLogger(__name__)

GALLERY_TOPIC = "oneeye/gallery/updated"


def publish_gallery_event(event: GalleryEvent, target: str, *, timeout_s: float = 10.0) -> None:
    """Announce ``event`` through ``target`` (``iot-data``, ``none`` or ``mqtt://host:port``).

    Raises NotifyError when the broker does not acknowledge, ConfigError for an unknown target.
    """
    payload = event.to_json().encode()
    if target == "none":
        log.info("gallery %s v%d: GALLERY_NOTIFY=none, not published", event.watchlist,
                 event.version)
        return
    if target == "iot-data":
        _ensure_iot_data_endpoint()
        aws.client("iot-data").publish(topic=GALLERY_TOPIC, qos=1, payload=payload)
    elif target.startswith(("mqtt://", "tcp://")):
        _mqtt_publish(target, payload, timeout_s)
    else:
        raise ConfigError(f"GALLERY_NOTIFY must be 'iot-data', 'none' or mqtt://host:port, "
                          f"got {target!r}")
    log.info("published gallery %s v%d on %s", event.watchlist, event.version, GALLERY_TOPIC)


def _ensure_iot_data_endpoint() -> None:
    """Point iot-data at this account's ATS endpoint (once per container).

    boto3's default iot-data host is a shared one meant for testing; the account's
    own ``…-ats.iot.<region>.amazonaws.com`` comes from ``iot:DescribeEndpoint``.
    Set through the factory's per-service variable so every client agrees.
    """
    if aws.endpoint_url("iot-data"):
        return
    address = aws.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    os.environ["AWS_ENDPOINT_URL_IOT_DATA"] = f"https://{address}"


def _mqtt_publish(url: str, payload: bytes, timeout_s: float) -> None:
    parsed = urllib.parse.urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 1883
    connected = threading.Event()
    result: dict[str, object] = {}

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object,
                   properties: object = None) -> None:
        result["rc"] = reason
        connected.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"oneeye-indexer-{new_id()[-12:]}")
    if parsed.username:
        client.username_pw_set(parsed.username, parsed.password)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise NotifyError(f"cannot reach MQTT broker {host}:{port}: {exc}") from exc
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or getattr(result.get("rc"), "is_failure", False):
            raise NotifyError(f"MQTT broker {host}:{port} refused or did not answer "
                              f"({result.get('rc')})")
        info = client.publish(GALLERY_TOPIC, payload, qos=1)
        info.wait_for_publish(timeout=timeout_s)
        if not info.is_published():
            raise NotifyError(f"no PUBACK from {host}:{port} within {timeout_s:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
