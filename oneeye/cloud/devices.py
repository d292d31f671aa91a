"""The device registry: which site and cameras a thing (an edge device) speaks for.

A device's identity comes from its *connection*, never from what it writes: the
IoT policy lets a certificate publish only on ``oneeye/devices/<its thing
name>/…``, the topic rules pass that name to the handlers as ``iot_thing``
(``topic(3)``), and the thing's attributes in the IoT registry say where it
stands::

    site_id = branch-12            (one site)
    cameras = door,till            (comma-separated camera ids)

The Lambdas read them with ``iot:DescribeThing`` (cached per container for
:data:`DEFAULT_TTL_S`; a move to another site takes effect within that time);
the local stack registers its devices with ``iot:CreateThing`` on the moto
server, so the same boto3 call answers in both places (:func:`register`).

:func:`check_sender` is the one rule every edge-event handler applies: the
payload's ``device_id`` must be the publishing thing, its ``site_id`` the
thing's site and its ``camera_id`` one of the thing's cameras. Anything else is
a forged or misconfigured message and is rejected (logged, never retried).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from oneeye.cloud.dal.things import describe_thing, put_thing
from oneeye.cloud.settings import DeviceMessageSettings
from oneeye.types import is_id

log = logging.getLogger(__name__)

#: Seconds a registry answer is reused inside one Lambda container (or the local stack).
DEFAULT_TTL_S = 60.0
#: The field the topic rules add to every edge event: ``topic(3) AS iot_thing``.
THING_FIELD = "iot_thing"


@dataclass(frozen=True)
class Device:
    """A registered thing: its name, its one site and the cameras it may report."""

    thing: str
    site_id: str | None
    cameras: frozenset[str]


class Sender(Protocol):
    """What :func:`check_sender` reads of an edge event (match or health)."""

    @property
    def device_id(self) -> str: ...
    @property
    def site_id(self) -> str: ...
    @property
    def camera_id(self) -> str: ...


Describe = Callable[[str], "dict[str, Any] | None"]


class Registry:
    """Thing name → :class:`Device`, cached for ``ttl_s`` (also unknown things)."""

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, describe: Describe = describe_thing,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._describe = describe
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Device | None]] = {}

    def lookup(self, thing: str) -> Device | None:
        """The registered device, or None. Registry errors (throttling, network) raise."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(thing)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        attrs = self._describe(thing)
        device = None if attrs is None else Device(
            thing=thing, site_id=attrs.get("site_id") or None,
            cameras=frozenset(c.strip() for c in str(attrs.get("cameras") or "").split(",")
                              if c.strip()))
        with self._lock:
            self._cache[thing] = (now, device)
        return device


def check_sender(event: Sender, thing: object, registry: Registry) -> str | None:
    """Why ``event`` may not come from the publishing ``thing``, or None when it may."""
    if not is_id(thing):
        return (f"no valid thing name from the topic ({THING_FIELD} is {thing!r}); "
                "edge events must arrive through the IoT rules")
    assert isinstance(thing, str)
    if event.device_id != thing:
        return f"device_id {event.device_id!r} is not the publishing thing {thing!r}"
    device = registry.lookup(thing)
    if device is None:
        return f"thing {thing!r} is not in the device registry"
    if device.site_id != event.site_id:
        return (f"site_id {event.site_id!r} is not thing {thing!r}'s registered site "
                f"{device.site_id!r}")
    if event.camera_id not in device.cameras:
        return (f"camera_id {event.camera_id!r} is not one of thing {thing!r}'s registered "
                f"cameras {sorted(device.cameras)}")
    return None


def register(thing: str, site_id: str, cameras: Iterable[str]) -> None:
    """Create or update ``thing`` with its site and cameras (local stack, tests, tooling).

    In AWS the same attributes are set when a device is provisioned (``aws iot
    create-thing --attribute-payload``); see cloud/README.md.
    """
    attrs = {"site_id": site_id, "cameras": ",".join(sorted(set(cameras)))}
    put_thing(thing, attrs)
    log.info("device registry: %s → site %s, cameras %s", thing, site_id, attrs["cameras"])


def registry(settings: DeviceMessageSettings) -> Registry:
    """The registry of a Lambda container (``DEVICE_REGISTRY_TTL_S``, default 60 s)."""
    return Registry(ttl_s=settings.device_registry_ttl_s)
