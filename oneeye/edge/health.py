"""``oneeye.health/1``: the device's vital signs, built from the pipeline's metrics.

The pipeline hands the uplink a ``metrics()`` callable returning a dict with
``fps, frame_age_ms, latency_ms {p50, p95}, stage_ms, open_tracks, camera_state``.
:func:`build_health` merges that with what only the uplink knows (outbox depth
and drops, gallery versions, gallery-sync failures, uptime) and validates the
result against :class:`oneeye.events.HealthEvent`. A metrics dict that is
missing keys, holds ``None``/NaN or junk gives a health message with those
fields empty and a logged warning — a broken metric must never silence the
heartbeat the dashboard uses to mark a device offline.

Health is published directly, not through the outbox: a vital sign from an hour
ago is worthless after an outage, and it must never push a match out of the
bounded outbox. A health message that cannot be sent is counted and skipped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from oneeye.edge.settings import EdgeSettings
from oneeye.events import HealthEvent, utc_now

log = logging.getLogger(__name__)

CAMERA_STATES = ("ok", "connecting", "reconnecting", "failed", "ended")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) and f >= 0 else None


def build_health(
    settings: EdgeSettings,
    metrics: Mapping[str, Any],
    *,
    uptime_s: float,
    outbox: Mapping[str, int],
    gallery_versions: Mapping[str, int],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The health message as a JSON-ready dict (schema fields + uplink extras)."""
    latency = metrics.get("latency_ms")
    latency = latency if isinstance(latency, Mapping) else {}
    stages = metrics.get("stage_ms")
    stages = stages if isinstance(stages, Mapping) else {}
    camera_state = metrics.get("camera_state", "ok")
    if camera_state not in CAMERA_STATES:
        log.warning("health: unknown camera_state %r reported as failed", camera_state)
        camera_state = "failed"
    open_tracks = _num(metrics.get("open_tracks"))
    fields: dict[str, Any] = {
        "device_id": settings.device_id,
        "site_id": settings.site_id,
        "camera_id": settings.camera_id,
        "sent_at": utc_now(),
        "uptime_s": round(max(uptime_s, 0.0), 1),
        "fps": _num(metrics.get("fps")) or 0.0,
        "frame_age_ms": _num(metrics.get("frame_age_ms")),
        "latency_ms": {"p50": _num(latency.get("p50")), "p95": _num(latency.get("p95"))},
        "stage_ms": {str(k): v for k, v in ((k, _num(v)) for k, v in stages.items())
                     if v is not None},
        "open_tracks": int(open_tracks) if open_tracks is not None else 0,
        "outbox_depth": int(outbox.get("depth", 0)),
        "outbox_dropped": int(outbox.get("dropped", 0)),
        "gallery_versions": dict(gallery_versions),
        "camera_state": camera_state,
    }
    try:
        event = HealthEvent.model_validate(fields)
    except ValidationError as exc:  # defensive: the sanitising above should make this unreachable
        log.warning("health: metrics did not validate (%s); sending the basics only", exc)
        event = HealthEvent.model_validate({k: fields[k] for k in (
            "device_id", "site_id", "camera_id", "sent_at", "uptime_s", "fps")})
    out = event.to_dict()
    # Fields beyond the schema are allowed within oneeye.health/1 (consumers ignore them).
    out["outbox_rejected"] = int(outbox.get("rejected", 0))
    out.update(extra or {})
    return out


def safe_metrics(metrics: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
    try:
        got = metrics()
    except Exception:
        log.exception("health: the pipeline's metrics() failed; reporting without them")
        return {"camera_state": "failed"}
    if not isinstance(got, Mapping):
        log.warning("health: metrics() returned %s, not a dict", type(got).__name__)
        return {}
    return got
