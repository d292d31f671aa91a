"""The message contracts between edge, cloud and dashboard (docs/architecture.md, "Contracts").

Every message is a JSON object with ``"schema": "oneeye.<kind>/<major>"`` and a
sortable ``event_id``. :func:`parse` is the one way in: it dispatches on the
schema, validates, and raises :class:`EventError` with the reason for anything
else — consumers log that reason and move on, they never crash on a message.

Within a major version, fields may be added: consumers ignore fields they do
not know (so an older dashboard keeps working when the edge learns a new
field), but every field they do know must validate. A new major version is a
new schema string and old consumers reject it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oneeye.errors import EventError
from oneeye.ids import new_id
from oneeye.types import (
    BBox,
    CameraState,
    ClockState,
    DeskKind,
    Id,
    StorageState,
    Strength,
    UtcTimestamp,
    Watchlist,
)
from oneeye.types import (
    format_time as format_time,  # re-exported until every caller imports oneeye.types
)
from oneeye.types import (
    utc_now as utc_now,
)

MATCH: Final = "oneeye.match/1"
HEALTH: Final = "oneeye.health/1"
GALLERY: Final = "oneeye.gallery/1"
DESK: Final = "oneeye.desk/1"

#: IoT Core's limit is 128 KB; we stay far below it so a snapshot never bounces.
MAX_EVENT_BYTES = 100 * 1024


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)

    event_id: str = Field(default_factory=new_id, min_length=8, max_length=64,
                          pattern=r"^[A-Za-z0-9-]+$")

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True, by_alias=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class MatchEvent(_Event):
    """``oneeye.match/1``: the edge recognised an enrolled person (edge → cloud).

    ``person_id`` is the enrolled identity's id in ``watchlist``: a bank customer id for
    ``customers``, and **the case id** (``MP-2026-0001``) for ``missing`` — a missing
    person is enrolled under their case, so the cloud looks the case up by this field.
    Every id field follows the one id grammar (:data:`oneeye.types.ID_PATTERN`).
    """

    schema_: Literal["oneeye.match/1"] = Field(MATCH, alias="schema")
    device_id: Id
    site_id: Id
    camera_id: Id
    observed_at: UtcTimestamp
    person_id: Id
    watchlist: Watchlist
    distance: float = Field(ge=0, le=2)
    margin: float = Field(ge=0, le=2)
    bbox: BBox = Field(description="[top, right, bottom, left], source px")
    track_id: int = Field(ge=0)
    frames_seen: int = Field(ge=1)
    gallery_version: int = Field(ge=0)
    snapshot_jpeg: str | None = Field(None, description="base64 JPEG face crop")
    encoding: list[Annotated[float, Field(ge=-10, le=10, allow_inf_nan=False)]] | None = Field(
        None, min_length=128, max_length=128, description="the track's fused encoding (128 "
        "floats, 5 decimals, ~1.2 KB) — only for an accepted match on a watchlist that learns "
        "from verdicts (the gallery's learning.enabled), never for a stranger: what Confirm "
        "or Not this person teaches the gallery (README 'Learning from verdicts')")
    source_frame: int | None = Field(None, ge=0)
    media_time_s: float | None = Field(None, ge=0)
    sent_at: UtcTimestamp | None = Field(
        None, description="the device's clock when it published this (set by the uplink at "
        "each send), so the cloud can tell a wrong clock from a late delivery")
    device_observed_at: UtcTimestamp | None = Field(
        None, description="set by the cloud when the device clock is off: the device's own "
        "observed_at, which observed_at then replaces with a trusted time (oneeye.cloud.skew)")
    clock_skew_s: float | None = Field(
        None, description="set by the cloud with device_observed_at: device clock minus "
        "receive time, seconds (negative: slow)")

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class LatencyStats(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    p50: float | None = None
    p95: float | None = None


#: Longest free-text field of ``oneeye.health/1`` (an error message); producers cut theirs
#: to this where they make it, so a long error can never make the heartbeat invalid.
MAX_ERROR_CHARS: Final = 500


def clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut), for capped fields."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CameraHealth(BaseModel):
    """One camera in ``oneeye.health/1`` ``cameras`` (added within version 1).

    ``fps`` counts frames actually received in the health window (absent when none
    arrived); ``frame_age_ms`` is the age of the newest frame at ``sent_at``, so it
    grows while a camera is frozen; ``dropped_frames`` counts frames skipped because
    processing was busy (newest frame wins), since the start.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    state: CameraState
    fps: float | None = Field(None, ge=0)
    frame_age_ms: float | None = Field(None, ge=0)
    dropped_frames: int = Field(0, ge=0)
    open_tracks: int = Field(0, ge=0)
    reconnects: int = Field(0, ge=0)


class StorageHealth(BaseModel):
    """A store the edge writes, in ``oneeye.health/1`` ``storage`` (added within version 1).

    ``state`` names the fault (:data:`oneeye.types.StorageState`); ``detail`` is the
    operating system's or SQLite's own words. While it is not ``ok``, new events wait in
    memory (``memory_events``, bounded; ``memory_dropped`` counts the ones given up, never
    a missing-person sighting while another kind can go first) and the store is retried.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    state: StorageState = "ok"
    path: str = Field("", max_length=MAX_ERROR_CHARS)
    detail: str | None = Field(None, max_length=MAX_ERROR_CHARS)
    since: UtcTimestamp | None = None
    memory_events: int = Field(0, ge=0)
    memory_dropped: int = Field(0, ge=0)


class ClockHealth(BaseModel):
    """The device clock, in ``oneeye.health/1`` ``clock`` (added within version 1).

    The edge fills ``state`` (``ok``/``unsynced``/``unknown``/``jumped``), ``jumps`` (wall
    clock jumps seen since start) and ``last_jump_s`` (the last jump, seconds, + = forward).
    The cloud adds ``skew_s`` (device time − receive time, seconds, from the last match) and
    sets ``state`` to ``skewed`` when that is beyond its tolerance.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    state: ClockState = "unknown"
    jumps: int = Field(0, ge=0)
    last_jump_s: float | None = None
    skew_s: float | None = None


class BacklogProgress(BaseModel):
    """An outbox backlog being replayed (after an outage), in ``oneeye.health/1``
    ``backlog`` (added within version 1): paced to the broker's per-connection limits, so
    a long backlog takes minutes and this says how far it got."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    sent: int = Field(ge=0, description="events of this backlog sent so far")
    waiting: int = Field(ge=0, description="events still in the outbox")
    publishes_per_s: float = Field(ge=0, description="messages sent in the last second")
    eta_s: float | None = Field(None, ge=0, description="at the configured pace")


class HealthEvent(_Event):
    """``oneeye.health/1``: a device's vital signs, every 30 s (edge → cloud).

    ``cameras`` reports every camera of the device. The top-level ``camera_id``,
    ``camera_state``, ``fps`` and ``frame_age_ms`` (kept for consumers that predate
    ``cameras``) describe the camera most in need of attention: the worst state, then
    the oldest frame. ``fps`` is 0 when that camera delivers nothing.
    """

    schema_: Literal["oneeye.health/1"] = Field(HEALTH, alias="schema")
    device_id: Id
    site_id: Id
    camera_id: Id
    sent_at: UtcTimestamp
    uptime_s: float = Field(ge=0)
    fps: float = Field(ge=0)
    frame_age_ms: float | None = Field(None, ge=0)
    latency_ms: LatencyStats = Field(default_factory=LatencyStats)
    stage_ms: dict[str, float] = Field(default_factory=dict)
    open_tracks: int = Field(0, ge=0)
    outbox_depth: int = Field(0, ge=0)
    outbox_dropped: int = Field(0, ge=0)
    gallery_versions: dict[str, int] = Field(default_factory=dict)
    camera_state: CameraState = "ok"
    outbox_rejected: int = Field(0, ge=0, description="events IoT Core refused (not retried)")
    gallery_sync_applied: int = Field(0, ge=0)
    gallery_sync_failures: int = Field(0, ge=0)
    gallery_sync_last_error: str | None = Field(None, max_length=MAX_ERROR_CHARS)
    gallery_unsigned: bool = Field(False, description="galleries are applied without a "
                                   "signature check (gallery_sync.allow_unsigned, development)")
    snapshots_trimmed: int = Field(0, ge=0, description="events sent without their snapshot "
                                   "to stay under the size limit")
    health_failed: int = Field(0, ge=0, description="health messages that failed to send")
    cameras: dict[Id, CameraHealth] | None = Field(None, description="every camera, by id")
    storage: dict[str, StorageHealth] | None = Field(
        None, description="every store the edge writes (outbox, gallery cache), by name")
    clock: ClockHealth | None = Field(None, description="the device clock's state")
    client_id_conflict: str | None = Field(
        None, max_length=MAX_ERROR_CHARS, description="set while the broker keeps dropping "
        "this device right after it connects: another device may be using its client id")
    backlog: BacklogProgress | None = Field(None, description="an outbox backlog being "
                                            "replayed; absent when none")

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class GalleryEvent(_Event):
    """``oneeye.gallery/1``: a watchlist has a new version (cloud → every edge)."""

    schema_: Literal["oneeye.gallery/1"] = Field(GALLERY, alias="schema")
    watchlist: Watchlist
    version: int = Field(ge=0)
    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(description="S3 key of the .npz")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    published_at: UtcTimestamp
    change: Literal["added", "removed", "rebuilt"] = "rebuilt"
    person_id: Id | None = Field(None, description="who was added or removed; for the "
                                 "missing watchlist this is the case id")
    signature: str | None = Field(None, max_length=200, description="base64 Ed25519 over "
                                  "watchlist, version, key, sha256 (oneeye.signing)")

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class DeskEvent(_Event):
    """``oneeye.desk/1``: what a teller's desk shows (SNS desk topic → dashboard).

    ``customer`` carries the bank's details for ``customer_arrived`` (absent when the
    customer API was down: ``degraded`` is then true and ``message`` says so);
    ``case`` carries the missing-person case for ``missing_person_sighted``;
    ``health`` carries a device's latest ``oneeye.health/1`` for ``device_status``
    (at most one per device per ``DEVICE_STATUS_EVERY_S``; whether a device is online is
    the cloud's ``device_offline`` / ``device_online`` transitions, never a silence the
    dashboard times). ``strength`` / ``strength_text`` are the match's plain-language
    strength (:func:`oneeye.alerting.strength`), decided once in the cloud function that
    made the card (``customer_arrived``, ``missing_person_sighted``); absent otherwise.
    """

    schema_: Literal["oneeye.desk/1"] = Field(DESK, alias="schema")
    kind: DeskKind
    site_id: Id
    observed_at: UtcTimestamp
    message: str = Field("", max_length=500)
    degraded: bool = False
    device_id: Id | None = None
    match: MatchEvent | None = None
    customer: dict[str, Any] | None = None
    case: dict[str, Any] | None = None
    snapshot_url: str | None = None
    health: HealthEvent | None = None
    strength: Strength | None = None
    strength_text: str | None = Field(None, max_length=40)

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


Event = MatchEvent | HealthEvent | GalleryEvent | DeskEvent
_BY_SCHEMA: dict[str, type[_Event]] = {
    MATCH: MatchEvent, HEALTH: HealthEvent, GALLERY: GalleryEvent, DESK: DeskEvent,
}


def loads(data: str | bytes) -> Any:
    """``json.loads`` for untrusted text: EventError for anything that is not JSON.

    Nesting deep enough to exhaust Python's recursion limit (``[[[[…``) is one such
    thing: ``json`` raises RecursionError, which would otherwise escape every handler.
    """
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EventError(f"not JSON: {exc}") from exc


def parse(message: str | bytes | dict[str, Any], *, expect: str | None = None) -> Event:
    """Validate one message and return its typed event, or raise :class:`EventError`."""
    if isinstance(message, str | bytes):
        if len(message) > 256 * 1024:
            raise EventError("message too large")
        data = loads(message)
    else:
        data = message
    if not isinstance(data, dict):
        raise EventError("not a JSON object")
    schema = data.get("schema")
    if not isinstance(schema, str):
        raise EventError("missing 'schema'")
    if schema not in _BY_SCHEMA:
        raise EventError(f"unknown schema {schema!r}")
    if expect is not None and schema != expect:
        raise EventError(f"expected schema {expect!r}, got {schema!r}")
    try:
        event = _BY_SCHEMA[schema].model_validate(data)
    except ValidationError as exc:
        raise EventError(f"invalid {schema}: {_explain(exc)}") from exc
    return event  # type: ignore[return-value]


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
