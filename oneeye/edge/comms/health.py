"""``oneeye.health/1``: the device's vital signs as ONE typed :class:`HealthEvent`.

The runner knows the cameras, the galleries and the gallery sync (and its cache's storage
state); it hands the uplink a ``vitals()`` callable returning :class:`Vitals`. The uplink
adds what only it knows (outbox depth, drops and refusals, the outbox's storage state, the
device clock's state, a client id that seems shared, health and snapshot counters, uptime)
and :func:`build_health` builds the whole message once, every field typed and
validated together; it is serialised once when sent. Free-text fields are cut to
:data:`oneeye.events.MAX_ERROR_CHARS` where they are produced (the gallery sync), so
a long error can never make the heartbeat invalid and the device look offline.

Health is published directly, not through the outbox: a vital sign from an hour
ago is worthless after an outage, and it must never push a match out of the
bounded outbox. A health message that cannot be sent is counted and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from oneeye.edge.gallery.sync import SyncStats
from oneeye.edge.settings import DEFAULT_CAMERA_ID, EdgeSettings
from oneeye.events import (
    BacklogProgress,
    CameraHealth,
    ClockHealth,
    HealthEvent,
    LatencyStats,
    StorageHealth,
)
from oneeye.types import CameraState, utc_now

log = logging.getLogger(__name__)

#: Which camera the top-level fields describe: the one most in need of attention.
_ATTENTION: dict[CameraState, int] = {"failed": 0, "reconnecting": 1, "connecting": 2,
                                      "ended": 3, "ok": 4}


@dataclass(frozen=True)
class Vitals:
    """What the runner reports for one health message."""

    cameras: dict[str, CameraHealth]
    latency_ms: LatencyStats = field(default_factory=LatencyStats)
    stage_ms: dict[str, float] = field(default_factory=dict)
    gallery_versions: dict[str, int] = field(default_factory=dict)
    sync: SyncStats | None = None
    #: Stores the runner's parts write (the gallery cache), by name; the uplink adds "outbox".
    storage: dict[str, StorageHealth] = field(default_factory=dict)

    @classmethod
    def unknown(cls, settings: EdgeSettings) -> Vitals:
        """Vitals when the runner could not say: every camera reported ``failed``."""
        return cls({cid: CameraHealth(state="failed") for cid in settings.per_camera()})


def _attention(item: tuple[str, CameraHealth]) -> tuple[int, float]:
    cam = item[1]
    return _ATTENTION[cam.state], -(cam.frame_age_ms or 0.0)


def build_health(settings: EdgeSettings, vitals: Vitals, *, uptime_s: float,
                 outbox: Mapping[str, int], outbox_storage: StorageHealth | None = None,
                 clock: ClockHealth | None = None, client_id_conflict: str | None = None,
                 health_failed: int = 0,
                 snapshots_trimmed: int = 0,
                 backlog: BacklogProgress | None = None) -> HealthEvent:
    """The device's health message, validated as a whole.

    Raises nothing: a message that does not validate (a bug) is logged and replaced by
    one with the identity, uptime and camera states only, because a silent heartbeat
    makes the dashboard mark the device offline.
    """
    # An edge refuses to start without cameras, but an uplink alone (gallery sync, tests)
    # may still report: the message names the default camera as failed rather than raise.
    cameras = (vitals.cameras or Vitals.unknown(settings).cameras
               or {DEFAULT_CAMERA_ID: CameraHealth(state="failed")})
    camera_id, worst = min(cameras.items(), key=_attention)
    sync = vitals.sync or SyncStats()
    basics = {"device_id": settings.device_id, "site_id": settings.site_id,
              "camera_id": camera_id, "sent_at": utc_now(),
              "uptime_s": round(max(uptime_s, 0.0), 1), "fps": worst.fps or 0.0,
              "camera_state": worst.state, "frame_age_ms": worst.frame_age_ms}
    try:
        return HealthEvent(
            **basics, cameras=cameras, latency_ms=vitals.latency_ms, stage_ms=vitals.stage_ms,
            open_tracks=sum(c.open_tracks for c in cameras.values()),
            outbox_depth=outbox.get("depth", 0), outbox_dropped=outbox.get("dropped", 0),
            outbox_rejected=outbox.get("rejected", 0),
            gallery_versions=vitals.gallery_versions,
            gallery_sync_applied=sync.applied, gallery_sync_failures=sync.failures,
            gallery_sync_last_error=sync.last_error, gallery_unsigned=sync.unsigned,
            health_failed=health_failed,
            snapshots_trimmed=snapshots_trimmed, backlog=backlog,
            storage={**vitals.storage,
                     **({"outbox": outbox_storage} if outbox_storage is not None else {})},
            clock=clock, client_id_conflict=client_id_conflict)
    except ValidationError as exc:
        log.error("health: message did not validate (%s); sending the basics only", exc)
        return HealthEvent(**basics, cameras={k: CameraHealth(state=v.state)
                                              for k, v in cameras.items()})
