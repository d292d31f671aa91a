"""Running as a Greengrass v2 component: configuration from IPC, validated, followed live.

The component's configuration (recipe ``DefaultConfiguration`` merged with the
deployment's) is read with ``get_configuration`` and validated against
:class:`EdgeSettings` — an unknown or bad key stops the component with its
path (``configuration.publish.urll: Extra inputs are not permitted``).
Greengrass only interpolates recipe variables inside configuration when the
Nucleus is told to, so ``{iot:thingName}`` in any string value is replaced here
with ``AWS_IOT_THING_NAME``, which the Nucleus sets for every component.

:class:`ConfigFollower` subscribes to ``subscribe_to_configuration_update``: a
valid new configuration restarts the pipeline in-process (the outbox carries
pending events across); an invalid one is logged and the running one kept.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from oneeye.config import validate
from oneeye.edge.settings import EdgeSettings
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


def settings_from_config(config: dict[str, Any], thing_name: str | None = None) -> EdgeSettings:
    """Validate a component configuration (as IPC returns it) into :class:`EdgeSettings`."""
    if not isinstance(config, dict):
        raise ConfigError("component configuration must be a mapping")
    thing = thing_name or os.environ.get("AWS_IOT_THING_NAME", "")
    data = {k: v for k, v in config.items() if k not in NON_SETTINGS}
    if not thing and THING_NAME in repr(data):
        raise ConfigError("configuration uses {iot:thingName} but AWS_IOT_THING_NAME is not set")
    return validate(EdgeSettings, resolve_placeholders(data, thing), root="configuration")


def read_settings(ipc: Any, thing_name: str | None = None) -> EdgeSettings:
    try:
        response = ipc.get_configuration(key_path=[])
    except Exception as exc:
        raise ConfigError(f"cannot read the component configuration over IPC: {exc}") from exc
    return settings_from_config(dict(response.value or {}), thing_name)


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
        self._operation: Any = None

    def start(self) -> None:
        _, self._operation = self.ipc.subscribe_to_configuration_update(
            key_path=[], on_stream_event=self.on_update,
            on_stream_error=self._on_error, on_stream_closed=lambda: None)

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
        if self._operation is not None:
            try:
                self._operation.close()
            except Exception:  # shutting down: the Nucleus closes the stream anyway
                log.debug("closing the configuration stream failed", exc_info=True)
