"""Running as a Greengrass v2 component: configuration from IPC, validated, followed live.

The component's configuration (recipe ``DefaultConfiguration`` merged with the
deployment's) is read with ``get_configuration`` and validated against
:class:`EdgeSettings` — an unknown or bad key stops the component with its
path (``configuration.publish.urll: Extra inputs are not permitted``).

A thing-group deployment gives every device the same configuration; what differs
per device (its ``site_id`` and ``cameras``) is the ``desired`` state of the
device's named shadow ``oneeye-config`` (:class:`DeviceConfig`), read through the
``aws.greengrass.ShadowManager`` component over IPC (``get_thing_shadow``). It
replaces the configuration's ``site_id`` and whole ``cameras`` map. No shadow yet:
the component configuration alone is used (and a warning logged). Set it with
``./deploy.sh device-config`` (``aws iot-data update-thing-shadow --shadow-name
oneeye-config``); ShadowManager syncs it to the device.
Greengrass only interpolates recipe variables inside configuration when the
Nucleus is told to, so ``{iot:thingName}`` in any string value is replaced here
with ``AWS_IOT_THING_NAME``, which the Nucleus sets for every component.

:class:`ConfigFollower` subscribes to ``subscribe_to_configuration_update`` and to
the shadow's local ``…/shadow/name/oneeye-config/update/accepted`` topic: on
either it re-reads both, and a valid new result restarts the pipeline in-process
(the outbox carries pending events across, no redeploy needed); an invalid one is
logged and the running one kept.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from oneeye.config import validate
from oneeye.edge.settings import DEVICE_SHADOW, DeviceConfig, EdgeSettings
from oneeye.errors import ConfigError

log = logging.getLogger(__name__)

THING_NAME = "{iot:thingName}"
#: Keys Greengrass puts in the configuration that are not ours.
NON_SETTINGS = ("accessControl",)


def resolve_placeholders(value: Any, thing_name: str) -> Any:
    if isinstance(value, str):
        return value.replace(THING_NAME, thing_name)
    if isinstance(value, dict):
        return {k: resolve_placeholders(v, thing_name) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_placeholders(v, thing_name) for v in value]
    return value


def _thing(thing_name: str | None) -> str:
    return thing_name or os.environ.get("AWS_IOT_THING_NAME", "")


def settings_from_config(config: dict[str, Any], thing_name: str | None = None,
                         device: DeviceConfig | None = None) -> EdgeSettings:
    """Validate a component configuration (as IPC returns it), with this device's
    :class:`DeviceConfig` applied when there is one, into :class:`EdgeSettings`."""
    if not isinstance(config, dict):
        raise ConfigError("component configuration must be a mapping")
    thing = _thing(thing_name)
    data: dict[str, Any] = {k: v for k, v in config.items() if k not in NON_SETTINGS}
    if device is not None:
        data = device.apply_to(data)
    if not thing and THING_NAME in repr(data):
        raise ConfigError("configuration uses {iot:thingName} but AWS_IOT_THING_NAME is not set")
    return validate(EdgeSettings, resolve_placeholders(data, thing), root="configuration")


def shadow_topic(thing: str, suffix: str = "") -> str:
    """The device shadow's name as IPC resources and local topics spell it."""
    return f"$aws/things/{thing}/shadow/name/{DEVICE_SHADOW}{suffix}"


def read_device_config(ipc: Any, thing: str) -> DeviceConfig | None:
    """The ``desired`` state of ``thing``'s ``oneeye-config`` shadow, validated; None when
    the shadow or its ``desired`` state does not exist. Raises :class:`ConfigError` when
    it cannot be read or does not validate (the key path starts ``shadow.desired``)."""
    from awsiot.greengrasscoreipc.model import ResourceNotFoundError  # lazy: native library

    try:
        response = ipc.get_thing_shadow(thing_name=thing, shadow_name=DEVICE_SHADOW)
    except ResourceNotFoundError:
        log.warning("no shadow %s for %s: every setting comes from the component "
                    "configuration (set it with ./deploy.sh device-config)", DEVICE_SHADOW, thing)
        return None
    except Exception as exc:  # IPC transport or authorization errors of any type
        raise ConfigError(f"cannot read the shadow {DEVICE_SHADOW} of {thing} over IPC "
                          f"(is aws.greengrass.ShadowManager deployed?): {exc}") from exc
    try:
        doc = json.loads(response.payload or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"shadow {DEVICE_SHADOW}: not JSON: {exc}") from exc
    desired = (doc.get("state") or {}).get("desired") if isinstance(doc, dict) else None
    if not desired:
        return None
    if not isinstance(desired, dict):
        raise ConfigError(f"shadow {DEVICE_SHADOW}: state.desired must be an object")
    return validate(DeviceConfig, desired, root="shadow.desired")


def read_settings(ipc: Any, thing_name: str | None = None) -> EdgeSettings:
    """The component configuration with the device's shadow applied, validated."""
    try:
        response = ipc.get_configuration(key_path=[])
    except Exception as exc:  # IPC transport errors of any type
        raise ConfigError(f"cannot read the component configuration over IPC: {exc}") from exc
    thing = _thing(thing_name)
    device = read_device_config(ipc, thing) if thing else None
    return settings_from_config(dict(response.value or {}), thing, device)


def close_streams(operations: list[Any]) -> None:
    """Close every IPC stream operation in ``operations`` and empty the list.

    Best effort: a stream that fails to close is logged at debug level and the
    rest are still closed.
    """
    for op in operations:
        try:
            op.close()
        except Exception:  # best effort at shutdown; the Nucleus closes streams too
            log.debug("closing an IPC stream failed", exc_info=True)
    operations.clear()


class ConfigFollower:
    """Re-reads and validates the configuration on every update; flags valid changes."""

    def __init__(self, ipc: Any, current: EdgeSettings, stop_event: threading.Event,
                 thing_name: str | None = None) -> None:
        self.ipc = ipc
        self.current = current
        self.pending: EdgeSettings | None = None
        self.stop_event = stop_event
        self.thing_name = thing_name
        self.rejected = 0
        self._operations: list[Any] = []

    def start(self) -> None:
        _, op = self.ipc.subscribe_to_configuration_update(
            key_path=[], on_stream_event=self.on_update,
            on_stream_error=self._on_error, on_stream_closed=lambda: None)
        self._operations.append(op)
        thing = _thing(self.thing_name)
        if thing:   # the shadow changed (synced from the cloud by ShadowManager)
            _, op = self.ipc.subscribe_to_topic(
                topic=shadow_topic(thing, "/update/accepted"), on_stream_event=self.on_update,
                on_stream_error=self._on_error, on_stream_closed=lambda: None)
            self._operations.append(op)

    def _on_error(self, exc: Exception) -> bool:
        log.error("configuration updates: %s", exc)
        return False

    def on_update(self, event: Any) -> None:
        try:
            new = read_settings(self.ipc, self.thing_name)
        except ConfigError as exc:
            self.rejected += 1
            log.error("configuration update rejected, keeping the running one:\n%s", exc)
            return
        if new == self.current:
            return
        log.info("configuration changed: restarting the pipeline with it")
        self.pending = new
        self.stop_event.set()

    def take(self) -> EdgeSettings | None:
        new, self.pending = self.pending, None
        if new is not None:
            self.current = new
        return new

    def close(self) -> None:
        close_streams(self._operations)
