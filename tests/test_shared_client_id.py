"""Two edges with one client id: the broker drops each when the other connects. Both say
so, in the log and in health, instead of fighting in silence (issue 24, kind 3)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from oneeye.edge.comms.conflict import QUICK_DROP_S, QUICK_DROPS_FOR_CONFLICT, QuickDrops
from oneeye.edge.comms.health import Vitals
from oneeye.edge.comms.uplink import Uplink
from oneeye.edge.settings import EdgeSettings
from oneeye.events import CameraHealth
from tests.mqtt_support import BROKERS, make_broker, stop_broker
from tests.wait import ManualClock, wait_until


def _edge(port: int, outbox: Path) -> Uplink:
    settings = EdgeSettings.model_validate(
        {"device_id": "branch-7-cam", "publish": {
            "url": f"mqtt://127.0.0.1:{port}", "reconnect_min_s": 1, "reconnect_max_s": 1,
            "timeout_s": 2}, "outbox": {"path": str(outbox)}})
    return Uplink(settings, lambda: Vitals({"cam-1": CameraHealth(state="ok")})).start()


@pytest.mark.parametrize("kind", BROKERS)
def test_two_edges_with_one_client_id_each_report_the_other(
        kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broker = make_broker(kind, tmp_path).start()
    caplog.set_level(logging.ERROR, logger="oneeye.edge.comms.publishers")
    first = _edge(broker.port, tmp_path / "a.sqlite3")
    try:
        assert first.publisher.wait_connected(10)
        assert first.health().client_id_conflict is None     # alone: nothing to say
        second = _edge(broker.port, tmp_path / "b.sqlite3")
        try:
            wait_until(lambda: first.health().client_id_conflict
                       or second.health().client_id_conflict, 90,
                       "a client id conflict in either edge's health")
        finally:
            second.close(timeout=0.5)
    finally:
        first.close(timeout=0.5)
        stop_broker(broker)
    assert "another device may be using client id 'branch-7-cam'" in caplog.text
    assert "(in AWS IoT, the thing name)" in caplog.text


def test_one_drop_or_drops_of_lasting_connections_are_not_a_conflict() -> None:
    clock = ManualClock()
    drops = QuickDrops("cam-1", "broker:1883", clock=clock)
    for _ in range(5):              # a broker restart now and then: each connection lasted
        drops.up()
        clock.advance(QUICK_DROP_S + 1)
        drops.down()
    assert drops.conflict() is None and drops.total == 0
    for _ in range(QUICK_DROPS_FOR_CONFLICT - 1):   # quick drops, but one short of the rule
        drops.up()
        drops.down()
    assert drops.conflict() is None
    drops.up()
    drops.down()
    assert drops.conflict() is not None and "'cam-1'" in str(drops.conflict())
    drops.up()                      # the other device went away: this connection holds
    clock.advance(QUICK_DROP_S + 1)
    assert drops.conflict() is None
