# Long module: one sync loop (push, poll, verify, apply, cache) around one trust rule
# (signed, dated, never older); split, the rule would spread over several files.
"""Keep the edge's galleries current: push on ``oneeye/gallery/updated``, poll as a fallback.

The indexer publishes ``oneeye.gallery/1`` (watchlist, version, bucket, key,
sha256) when a watchlist changes. The message only says *where* the gallery is;
:class:`GallerySync` downloads it from S3 through :func:`oneeye.aws.client` (in
Greengrass the token exchange service provides credentials via the default
chain), verifies the sha256 (:func:`oneeye.gallery.from_bytes`), checks that the
file is the watchlist and version announced, caches it on disk and swaps it into
the :class:`GalleryHolder` atomically — frames in flight finish on the old
matcher. A message can be missed (device offline, broker restart), so every
``poll_interval_s`` we also read ``gallery/{watchlist}/latest.json``.

Trust: with ``public_key`` (what ``./deploy.sh`` configures) only a manifest
whose Ed25519 signature (:mod:`oneeye.signing`) verifies is applied, and only a
``latest.json`` whose dated pointer signature verifies and whose ``issued_at`` is
younger than ``max_latest_age_s`` is believed. The edge never applies a version
older than the newest it has verified (its *floor*, per watchlist, kept in
``{cache_dir}/verified.json`` across restarts); a fresh edge with no floor yet
learns it from the signed pointer first (an update message then only asks for
``latest.json``). Without ``public_key`` every gallery is refused, unless
``allow_unsigned`` (development) says otherwise, which the start log and every
health message (``gallery_unsigned``) report.

Refused (old gallery kept, error logged and counted in health): a sha256
mismatch, a corrupt file, a watchlist/version other than announced, a bucket
other than the configured one, a key outside ``gallery/{watchlist}/``; a
signature or pointer that is missing, does not verify or is too old; a version
below the floor; any gallery without ``public_key`` or ``allow_unsigned``; a
*message* announcing a version more than ``max_version_jump`` ahead of the one
in use (a forged v2^53 would otherwise hide every genuine version after it) —
``latest.json`` is then read at once. Ignored quietly (debug log): watchlists
this device does not follow, versions not newer than the one in use. Messages
arrive on the transport's thread; the work is done on our own thread so a slow
download never blocks the MQTT client.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from oneeye import aws, signing
from oneeye import gallery as gallery_mod
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.edge.settings import EdgeSettings
from oneeye.edge.storage import classify
from oneeye.errors import EventError, GalleryError, NotFound, Refused, SignatureError
from oneeye.events import GalleryEvent, StorageHealth, clip, parse
from oneeye.gallery import Gallery
from oneeye.types import utc_now

log = logging.getLogger(__name__)

#: Refuse absurd downloads before reading them (a 1M-encoding gallery is ~0.5 GB).
MAX_GALLERY_BYTES = 1 << 30


#: What reading a ``latest.json`` that is not the indexer's dict raises (bad UTF-8 or JSON,
#: a missing key, a list or string where the dict belongs, a version that is no integer).
_JUNK_JSON: tuple[type[Exception], ...] = (ValueError, KeyError, TypeError)


@dataclass(frozen=True)
class SyncStats:
    """Counters for ``oneeye.health/1``; ``last_error`` is already clipped to fit."""

    applied: int = 0
    failures: int = 0
    last_error: str | None = field(default=None)
    unsigned: bool = False   # allow_unsigned in effect: nothing is verified


@dataclass(frozen=True)
class Update:
    watchlist: str
    version: int
    bucket: str
    key: str
    sha256: str
    source: str            # "message" | "poll"
    received: float        # time.monotonic() when we learnt of it
    signature: str | None = None   # base64 Ed25519 over watchlist, version, key, sha256
    issued_at: object = None       # latest.json only: the pointer's Unix seconds
    latest_signature: object = None  # latest.json only: over the pointer (oneeye.signing)


class GallerySync:
    def __init__(self, settings: EdgeSettings, holder: GalleryHolder, *,
                 s3_client: Any = None) -> None:
        self.settings = settings
        self.cfg = settings.gallery_sync
        self.holder = holder
        self._s3 = s3_client
        self._queue: queue.Queue[Update | None] = queue.Queue()
        self._stop = threading.Event()
        self._poll_now = threading.Event()
        #: The public key galleries must be signed with; None: unsigned mode or refusing all.
        self.public_key = self.cfg.public_key
        #: allow_unsigned in effect (no public key): galleries are applied unchecked.
        self.unsigned = self.public_key is None and self.cfg.allow_unsigned
        if self.public_key:
            signing.public_key(self.public_key)  # a bad key stops the start, not each update
        elif self.unsigned:
            log.warning("gallery sync: INSECURE: gallery_sync.allow_unsigned without a "
                        "public_key: galleries are applied without any signature check "
                        "(development only; health reports gallery_unsigned)")
        else:
            log.error("gallery sync: no gallery_sync.public_key: every gallery is refused "
                      "(./deploy.sh configures the key; allow_unsigned is for development)")
        self._floor_path = Path(self.cfg.cache_dir) / "verified.json"
        #: Newest verified version per watchlist: nothing older is ever applied.
        self.floor: dict[str, int] = self._load_floor() if self.public_key else {}
        self._thread: threading.Thread | None = None
        #: The cache directory's storage state, for health (``storage.gallery_cache``).
        self.cache_storage = StorageHealth(path=str(self.cfg.cache_dir))
        self.applied = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_swap_latency_s: float | None = None

    # -- inputs ---------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        """Subscription callback for ``oneeye/gallery/updated`` (never raises)."""
        received = time.monotonic()
        try:
            event = parse(payload, expect="oneeye.gallery/1")
        except EventError as exc:
            self._fail(f"bad message on {topic}: {exc}")
            return
        assert isinstance(event, GalleryEvent)
        self._queue.put(Update(event.watchlist, event.version, event.bucket, event.key,
                               event.sha256, "message", received, event.signature))

    @property
    def poll_requested(self) -> bool:
        """True while a refused update has asked for ``latest.json`` to be read at once."""
        return self._poll_now.is_set()

    def apply_queued(self) -> list[bool]:
        """Apply every update queued so far on the caller's thread (the sync thread not
        running); one :meth:`apply` result per update, in arrival order."""
        results: list[bool] = []
        while True:
            try:
                update = self._queue.get_nowait()
            except queue.Empty:
                return results
            if update is not None:
                results.append(self.apply(update))

    def poll_once(self) -> None:
        """Read every followed watchlist's ``latest.json`` and queue what is newer."""
        bucket = self.cfg.bucket
        if not bucket:
            return
        for watchlist in self.settings.watchlists:
            key = f"gallery/{watchlist}/latest.json"
            try:
                with aws.errors():
                    obj = self.s3.get_object(Bucket=bucket, Key=key)
                latest = json.loads(obj["Body"].read())
                update = Update(watchlist, int(latest["version"]), bucket, str(latest["key"]),
                                str(latest["sha256"]), "poll", time.monotonic(),
                                latest.get("signature"), latest.get("issued_at"),
                                latest.get("latest_signature"))
            except NotFound:
                log.debug("no %s yet in s3://%s", key, bucket)
                continue
            except aws.failures() + _JUNK_JSON as exc:
                # AWS said no or did not answer, or latest.json is junk: counted, polled again
                self._fail(f"polling s3://{bucket}/{key} failed: {type(exc).__name__}: {exc}")
                continue
            if self.public_key:
                refusal = self._pointer_refusal(update)
                if refusal:
                    self._fail(f"s3://{bucket}/{key} (v{update.version}) refused: {refusal}")
                    continue
                self._raise_floor(watchlist, update.version)
            if update.version > self._current_version(watchlist):
                self._queue.put(update)

    # -- processing -----------------------------------------------------------------

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = aws.client("s3")
        return self._s3

    def _current_version(self, watchlist: str) -> int:
        return self.holder.current().versions().get(watchlist, -1)

    def _fail(self, message: str) -> None:
        self.failures += 1
        self.last_error = clip(message)  # cut here: it travels in the health message
        log.error("gallery sync: %s", message)

    def apply(self, update: Update) -> bool:
        """Download, verify, cache and swap one update. True when a new gallery is in use."""
        wl = update.watchlist
        if wl not in self.settings.watchlists:
            log.debug("gallery %s v%d ignored: watchlist not followed", wl, update.version)
            return False
        current = self._current_version(wl)
        if update.version <= current:
            log.debug("gallery %s v%d ignored: v%d in use", wl, update.version, current)
            return False
        if self.public_key and wl not in self.floor and update.source == "message":
            # A fresh edge learns the newest version from the signed pointer first.
            log.info("gallery %s v%d: no verified latest.json yet; reading it first", wl,
                     update.version)
            self._poll_now.set()
            return False
        where = f"s3://{update.bucket}/{update.key}"
        if self.cfg.bucket and update.bucket != self.cfg.bucket:
            self._fail(f"{wl} v{update.version} refused: bucket {update.bucket!r} is not the "
                       f"configured {self.cfg.bucket!r}")
            return False
        if not update.key.startswith(f"gallery/{wl}/") or ".." in update.key:
            self._fail(f"{wl} v{update.version} refused: key {update.key!r} is outside "
                       f"gallery/{wl}/")
            return False
        refusal = self._untrusted(update, current)
        if refusal:
            self._fail(f"{wl} v{update.version} refused, keeping v{current}: {refusal}")
            return False
        try:
            with aws.errors():
                obj = self.s3.get_object(Bucket=update.bucket, Key=update.key)
            if int(obj.get("ContentLength") or 0) > MAX_GALLERY_BYTES:
                raise GalleryError(f"{obj['ContentLength']} bytes is over the limit")
            data = obj["Body"].read()
            new = gallery_mod.from_bytes(data, sha256=update.sha256)
            if new.watchlist != wl or new.version != update.version:
                raise GalleryError(f"file holds {new.watchlist} v{new.version}, not the "
                                   f"announced {wl} v{update.version}")
            self._cache(new)
            self.holder.swap(new)
        except (Refused, OSError) as exc:  # a bad file, or its body cut off mid-read
            self._fail(f"{wl} v{update.version} from {where} refused, keeping v{current}: {exc}")
            return False
        except aws.failures() as exc:  # AWS said no (access denied) or did not answer
            self._fail(f"{wl} v{update.version} download from {where} failed, keeping "
                       f"v{current}: {type(exc).__name__}: {exc}")
            return False
        if self.public_key:
            self._raise_floor(wl, new.version)
        self.applied += 1
        self.last_swap_latency_s = time.monotonic() - update.received
        log.info("gallery %s v%d from %s in use (%s, %.2f s after it was announced)", wl,
                 new.version, where, update.source, self.last_swap_latency_s)
        return True

    def _untrusted(self, update: Update, current: int) -> str | None:
        """Why an update may not be believed (no key, signature, older than the newest
        verified, implausible jump), or None."""
        if self.public_key:
            try:
                signing.verify_manifest(self.public_key, update.signature,
                                        update.watchlist, update.version, update.key,
                                        update.sha256)
            except SignatureError as exc:
                return str(exc)
            floor = self.floor.get(update.watchlist, 0)
            if update.version < floor:
                return (f"older than v{floor}, the newest verified (a rollback to an old "
                        "signed version)")
        elif not self.unsigned:
            return ("no gallery_sync.public_key to verify it with (unsigned galleries are "
                    "refused; allow_unsigned is for development)")
        jump = update.version - max(current, 0)
        if update.source == "message" and jump > self.cfg.max_version_jump:
            self._poll_now.set()  # a genuine big jump is confirmed by latest.json
            return (f"implausible version jump of {jump} (max_version_jump "
                    f"{self.cfg.max_version_jump}); reading latest.json instead")
        return None

    def _pointer_refusal(self, update: Update) -> str | None:
        """Why a polled ``latest.json`` is not a signed pointer fresh enough to believe."""
        assert self.public_key is not None
        try:
            signing.verify_pointer(self.public_key, update.latest_signature, update.watchlist,
                                   update.version, update.key, update.sha256, update.issued_at)
        except SignatureError as exc:
            return str(exc)
        assert isinstance(update.issued_at, int)
        age = time.time() - update.issued_at
        if age > self.cfg.max_latest_age_s:
            return (f"the pointer was issued {age / 3600:.1f} h ago, over max_latest_age_s "
                    f"({self.cfg.max_latest_age_s / 3600:.1f} h): stale or replayed")
        if age < -300:  # clocks differ by minutes at most (NTP); hours ahead is forged
            return f"the pointer is dated {-age:.0f} s in the future"
        return None

    def _load_floor(self) -> dict[str, int]:
        try:
            data = json.loads(self._floor_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # the signed pointer gives it back
            self._fail(f"{self._floor_path} unreadable ({exc}); relearning from latest.json")
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, int)}

    def _raise_floor(self, watchlist: str, version: int) -> None:
        """Remember ``version`` as verified (written through, atomically, before use)."""
        if version <= self.floor.get(watchlist, -1):
            return
        self.floor[watchlist] = version
        tmp = self._floor_path.with_suffix(".tmp")
        try:
            self._floor_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.floor, sort_keys=True))
            os.replace(tmp, self._floor_path)
        except OSError as exc:  # held in memory; a restart relearns it from latest.json
            log.warning("gallery sync: could not keep %s: %s", self._floor_path, exc)

    def _cache_path(self, watchlist: str) -> Path:
        return Path(self.cfg.cache_dir) / f"{watchlist}.npz"

    def _cache(self, g: Gallery) -> None:
        """Keep ``g`` on disk for the next start; a storage fault is named in health, logged
        once per change of state, and the gallery is in use anyway (the next update or poll
        writes it again)."""
        try:
            gallery_mod.save(g, self._cache_path(g.watchlist))
        except OSError as exc:
            state, detail = classify(exc, Path(self.cfg.cache_dir))
            if state != self.cache_storage.state:
                log.warning("gallery cache %s: storage %s (%s); gallery %s v%d is in use "
                            "anyway, not cached", self.cfg.cache_dir, state, detail,
                            g.watchlist, g.version)
            self.cache_storage = StorageHealth(state=state, path=str(self.cfg.cache_dir),
                                               detail=detail, since=utc_now())
            return
        except GalleryError as exc:
            log.warning("gallery %s v%d not cached (%s); it is in use anyway", g.watchlist,
                        g.version, exc)
            return
        if self.cache_storage.state != "ok":
            log.warning("gallery cache %s: storage ok again", self.cfg.cache_dir)
            self.cache_storage = StorageHealth(path=str(self.cfg.cache_dir))

    def load_cache(self) -> None:
        """At start: use cached galleries newer than what the holder has (verified)."""
        for wl in self.settings.watchlists:
            path = self._cache_path(wl)
            if not path.exists():
                continue
            try:
                g = gallery_mod.load(path)
                if g.watchlist != wl:
                    raise GalleryError(f"holds watchlist {g.watchlist}")
                if not self.public_key and not self.unsigned:
                    raise GalleryError("no gallery_sync.public_key: not trusted")
                if g.version < self.floor.get(wl, 0):
                    raise GalleryError(f"v{g.version} is older than v{self.floor[wl]}, the "
                                       "newest verified")
                if g.version > self._current_version(wl):
                    self.holder.swap(g)
                    log.info("gallery %s v%d loaded from cache %s", wl, g.version, path)
            except GalleryError as exc:
                self._fail(f"cached gallery {path} ignored: {exc}")

    # -- thread ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self.load_cache()
        self._thread = threading.Thread(target=self._run, name="gallery-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_poll = time.monotonic()  # poll at once: catch up on what we missed while down
        while not self._stop.is_set():
            if time.monotonic() >= next_poll or self._poll_now.is_set():
                self._poll_now.clear()
                self._guarded(self.poll_once)
                next_poll = time.monotonic() + self.cfg.poll_interval_s
            try:
                wait = 0.0 if self._poll_now.is_set() else next_poll - time.monotonic()
                update = self._queue.get(timeout=max(0.05, wait))
            except queue.Empty:
                continue
            if update is None:
                break
            self._guarded(partial(self.apply, update))

    def _guarded(self, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # thread boundary: one bad poll or update must not end syncing
            self.failures += 1
            log.exception("gallery sync: unexpected error")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def stats(self) -> SyncStats:
        return SyncStats(self.applied, self.failures, self.last_error, self.unsigned)
