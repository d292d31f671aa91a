"""events.py: the contracts validate, round-trip and reject bad messages with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oneeye import events
from oneeye.errors import EventError
from oneeye.ids import id_time_ms, is_uuid7, new_id


def match_dict(**overrides: Any) -> dict[str, Any]:
    base = events.MatchEvent(
        device_id="dev-1", site_id="branch-7", camera_id="door", observed_at=events.utc_now(),
        person_id="C-1042", watchlist="customers", distance=0.41, margin=0.12,
        bbox=(10, 60, 70, 5), track_id=3, frames_seen=4, gallery_version=12,
    ).to_dict()
    base.update(overrides)
    return base


def test_match_round_trip_uses_schema_key() -> None:
    data = match_dict()
    assert data["schema"] == "oneeye.match/1"
    event = events.parse(json.dumps(data))
    assert isinstance(event, events.MatchEvent)
    assert event.to_dict() == data


def test_ids_are_uuid7_and_sortable() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(is_uuid7(i) for i in ids[:10])
    assert abs(id_time_ms(ids[0]) - id_time_ms(ids[-1])) < 5000
    assert not is_uuid7("not-a-uuid")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ({"event_id": "x" * 10}, "missing 'schema'"),
        ({"schema": "oneeye.match/2"}, "unknown schema"),
        (match_dict(watchlist="vip"), "watchlist"),
        (match_dict(observed_at="yesterday"), "observed_at"),
        (match_dict(person_id="a/b"), "person_id"),
        (match_dict(distance=-1), "distance"),
        ({k: v for k, v in match_dict().items() if k != "device_id"}, "device_id"),
    ],
    ids=["not-json", "array", "no-schema", "unknown-major", "bad-watchlist", "bad-time",
         "topic-unsafe-id", "negative-distance", "missing-field"],
)
def test_malformed_messages_are_rejected_with_reason(message: Any, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        events.parse(message if isinstance(message, str) else json.dumps(message))


def test_unknown_fields_are_ignored_within_a_major_version() -> None:
    event = events.parse(match_dict(future_field="ok"))
    assert "future_field" not in event.to_dict()


def test_expect_guards_the_schema() -> None:
    with pytest.raises(EventError, match="expected schema"):
        events.parse(match_dict(), expect=events.HEALTH)


def test_desk_event_embeds_match() -> None:
    desk = events.DeskEvent(kind="customer_arrived", site_id="branch-7",
                            observed_at=events.utc_now(),
                            match=events.parse(match_dict()),  # type: ignore[arg-type]
                            customer={"id": "C-1042", "name": "Ada"})
    again = events.parse(desk.to_json())
    assert isinstance(again, events.DeskEvent) and again.match is not None
    assert again.match.person_id == "C-1042"


def test_oversized_message_rejected() -> None:
    with pytest.raises(EventError, match="too large"):
        events.parse("x" * (300 * 1024))
