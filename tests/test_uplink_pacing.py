"""The uplink paces itself to the broker's per-connection limits (issue 23 §8, field case
``iot-publish-rate``): a 3,000-event backlog — one in ten a missing-person match with a
~24 KB snapshot, as ``fill_outbox.py`` writes it — leaves at ≤ 100 publishes and ≤ 512 KiB
in every one-second window, in order, none lost, and health says how far the replay got.

Time is a clock the test owns: the uplink's pacing ``sleep`` moves it, so 30 s of pacing
take no real waiting. The transport is not under test here (test_uplink.py runs real
brokers): a publisher that acknowledges at once records when each message left."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import numpy as np
import pytest

from oneeye.edge.comms.health import Vitals
from oneeye.edge.comms.pacing import Pacer
from oneeye.edge.comms.publishers import NullPublisher
from oneeye.edge.comms.uplink import Uplink
from oneeye.edge.settings import EdgeSettings
from oneeye.events import BacklogProgress, CameraHealth, MatchEvent
from tests.mqtt_support import event
from tests.wait import wait_until

KIB = 1024


class SteppedClock:
    """Seconds that pass only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Recorder(NullPublisher):
    """Acknowledges every publish at once and notes (clock time, bytes, topic, payload)."""

    def __init__(self, clock: SteppedClock) -> None:
        super().__init__()
        self.clock = clock
        self.sent: list[tuple[float, int, str, bytes]] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        with self._lock:
            self.sent.append((self.clock(), len(topic.encode()) + len(payload), topic, payload))


def _snapshot(kib: int) -> str:
    """A base64 JPEG-sized blob (the size, not the picture, is what pacing sees)."""
    raw = np.random.default_rng(7).integers(0, 256, kib * KIB * 3 // 4, dtype=np.uint8)
    return base64.b64encode(raw.tobytes()).decode()


def _backlog(n: int) -> list[MatchEvent]:
    snap = _snapshot(24)
    return [event(i, watchlist="missing", person_id="case-0042", snapshot_jpeg=snap)
            if i % 10 == 0 else event(i) for i in range(n)]


def _worst_windows(times: list[float], sizes: list[int]) -> tuple[int, int]:
    """Most messages and most bytes in any one-second window [t, t + 1) starting at a send."""
    most_n = most_b = 0
    j = 0
    for i, t in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < t + 1.0:
            j += 1
        most_n = max(most_n, j - i)
        most_b = max(most_b, sum(sizes[i:j]))
    return most_n, most_b


def _settings(tmp_path: Path, **publish: object) -> EdgeSettings:
    return EdgeSettings.model_validate({
        "device_id": "edge-test", "publish": {"url": "mqtt://127.0.0.1:1", **publish},
        "outbox": {"path": str(tmp_path / "outbox.sqlite3")}, "health": {"interval_s": 3600}})


def test_defaults_are_aws_iot_cores_per_connection_quotas() -> None:
    p = EdgeSettings().publish
    assert (p.max_publishes_per_s, p.max_bytes_per_s) == (100, 512 * KIB)


def test_a_3000_event_backlog_replays_within_the_limits_in_order_and_reports_progress(
        tmp_path: Path) -> None:
    clock = SteppedClock()
    s = _settings(tmp_path)
    # The outage: 3,000 events wait in the outbox before the uplink starts.
    events = _backlog(3000)
    with_outbox = Uplink(s, lambda: Vitals({}), publisher=NullPublisher(), clock=clock,
                         sleep=clock.sleep)
    for e in events:
        with_outbox.submit(e)
    with_outbox.outbox.close()

    recorder = Recorder(clock)
    progress: list[BacklogProgress | None] = []
    up: Uplink | None = None

    def sleep(seconds: float) -> None:
        before = clock.now
        clock.sleep(seconds)
        if before < 10.0 <= clock.now and up is not None:   # health 10 s into the replay
            progress.append(up.health().backlog)

    up = Uplink(s, lambda: Vitals({"cam-1": CameraHealth(state="ok")}), publisher=recorder,
                clock=clock, sleep=sleep)
    up.start()
    try:
        matches = lambda: [r for r in recorder.sent if r[2].endswith("/matches")]  # noqa: E731
        wait_until(lambda: len(matches()) == 3000, 120, "3,000 events published")
        wait_until(lambda: up.backlog() is None, 10, "the backlog to be over")
    finally:
        up.close()

    sent = list(recorder.sent)
    most_n, most_b = _worst_windows([r[0] for r in sent], [r[1] for r in sent])
    assert most_n <= 100 and most_b <= 512 * KIB
    got = [MatchEvent.model_validate_json(r[3]).event_id for r in matches()]
    assert got == [e.event_id for e in events]               # in order, none lost or doubled
    duration = sent[-1][0] - sent[0][0]
    assert 29.0 <= duration <= 33.0   # 3,000 at 100/s: paced, and no slower than it must be
    assert progress and progress[0] is not None
    mid = progress[0]
    assert 900 <= mid.sent <= 1100 and mid.sent + mid.waiting == 3000
    assert mid.publishes_per_s >= 90 and mid.eta_s == pytest.approx(mid.waiting / 100, abs=1)


def test_bytes_pace_a_backlog_of_large_events(tmp_path: Path) -> None:
    """Only snapshots: 3,000 × ~24 KB is ~72 MB, so bytes, not publishes, set the pace."""
    clock = SteppedClock()
    pacer = Pacer(100, 512 * KIB, clock=clock)
    times, sizes = [], []
    for _ in range(400):
        size = 24 * KIB + 700
        clock.sleep(pacer.delay(size))
        while (wait := pacer.delay(size)) > 0:
            clock.sleep(wait)
        pacer.sent(size)
        times.append(clock.now)
        sizes.append(size)
    most_n, most_b = _worst_windows(times, sizes)
    assert most_b <= 512 * KIB and most_n <= 21
    assert times[-1] == pytest.approx(400 * sizes[0] / (512 * KIB), rel=0.1)


def test_a_message_bigger_than_a_seconds_budget_goes_alone() -> None:
    clock = SteppedClock()
    pacer = Pacer(100, 2 * KIB, clock=clock)
    pacer.sent(100)
    wait = pacer.delay(5 * KIB)
    assert wait == pytest.approx(1.0)       # after the window empties, never stuck forever
    clock.sleep(wait)
    assert pacer.delay(5 * KIB) == 0.0


def test_publish_limits_are_validated_with_their_key(tmp_path: Path) -> None:
    from oneeye.config import validate
    from oneeye.errors import ConfigError

    with pytest.raises(ConfigError, match=r"edge\.publish\.max_publishes_per_s"):
        validate(EdgeSettings, {"publish": {"max_publishes_per_s": 0}}, root="edge")
    with pytest.raises(ConfigError, match=r"edge\.publish\.max_bytes_per_sec"):
        validate(EdgeSettings, {"publish": {"max_bytes_per_sec": 1}}, root="edge")
