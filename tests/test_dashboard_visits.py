"""A verdict and "served" belong to the visit (a card), not to one event: every sighting of
the visit carries them, later ones too; a card leaves the desk when served or
``card_ttl_s`` after its last sighting, and stays in History."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from oneeye.events import DeskEvent
from oneeye.types import format_time
from tests import dashboard_helpers as dh
from tests.wait import ManualClock

Signer = dh.Signer
client_of, push = dh.client_of, dh.push


@pytest.fixture
def app_options() -> dict[str, Any]:
    return {"visit_window_s": 600, "card_ttl_s": 1800}


@pytest.fixture
def desk_users() -> dict[str, list[str]]:
    return {"alice": ["branch-1"], "bob": ["branch-2"]}


def arrival(person: str, minutes_ago: float, camera: str = "cam-1") -> DeskEvent:
    at = format_time(datetime.now(UTC) - timedelta(minutes=minutes_ago))
    event = dh.desk_event(person_id=person, name=f"Customer {person}", device_id=camera)
    assert event.match is not None
    return event.model_copy(update={"observed_at": at, "match": event.match.model_copy(
        update={"observed_at": at})})


def cards(client: FlaskClient, *, all_: bool = False) -> list[dict[str, Any]]:
    return list(client.get("/api/arrivals" + ("?all=1" if all_ else "")).get_json()["visits"])


def verdict(client: FlaskClient, token: str, visit_id: str, value: str | None) -> Any:
    return client.post(f"/api/visits/{visit_id}/verdict", json={"verdict": value},
                       headers={"X-CSRF-Token": token})


def test_a_visit_verdict_covers_every_sighting_and_the_next_one(app: Flask,
                                                                 signer: Signer) -> None:
    first, second = arrival("C-1", 5), arrival("C-1", 3, camera="cam-2")
    push(app, signer, first)
    push(app, signer, second)
    alice, token = client_of(app, "alice")
    [card] = cards(alice)
    assert card["visit_id"] == first.event_id and card["verdict"] is None
    given = verdict(alice, token, card["visit_id"], "rejected").get_json()
    assert given["verdict"]["verdict"] == "rejected" and given["verdict"]["by"] == "alice"

    push(app, signer, arrival("C-1", 1))                     # seen again, same visit
    [card] = cards(alice)
    assert card["count"] == 3 and card["verdict"]["verdict"] == "rejected"
    events = alice.get("/api/events?kind=customer_arrived").get_json()["events"]
    assert [e["feedback"]["verdict"] for e in events] == ["rejected"] * 3
    export = list(csv.DictReader(io.StringIO(alice.get("/history.csv").get_data(as_text=True))))
    assert {row["verdict"] for row in export} == {"rejected"}


def test_a_visit_verdict_can_be_undone_and_is_audited(app: Flask, signer: Signer) -> None:
    event = arrival("C-2", 2)
    push(app, signer, event)
    alice, token = client_of(app, "alice")
    assert verdict(alice, token, event.event_id, "confirmed").status_code == 200
    undone = verdict(alice, token, event.event_id, None).get_json()
    assert undone["verdict"] is None
    [card] = cards(alice)
    assert card["verdict"] is None
    [record] = alice.get("/api/events").get_json()["events"]
    assert record["feedback"] is None
    push(app, signer, arrival("C-2", 1))                     # nothing to inherit any more
    assert all(e["feedback"] is None for e in alice.get("/api/events").get_json()["events"])
    from dashboard.services import services_of

    actions = [r["action"] for r in services_of(app).store.audit.rows(user="alice")]
    assert actions[:2] == ["verdict_undone", "confirmed"]


def test_a_visit_verdict_refuses_bad_input_and_other_sites(app: Flask, signer: Signer) -> None:
    event = arrival("C-3", 2)
    push(app, signer, event)
    alice, token = client_of(app, "alice")
    bob, bob_token = client_of(app, "bob")
    assert verdict(alice, token, event.event_id, "maybe").status_code == 400
    assert alice.post(f"/api/visits/{event.event_id}/verdict", json={},
                      headers={"X-CSRF-Token": token}).status_code == 400
    assert alice.post(f"/api/visits/{event.event_id}/verdict",
                      json={"verdict": "confirmed"}).status_code == 400        # no CSRF
    assert verdict(bob, bob_token, event.event_id, "confirmed").status_code == 404
    assert verdict(alice, token, "no-such-event", "confirmed").status_code == 404
    assert cards(alice)[0]["verdict"] is None


def test_a_served_card_leaves_the_desk_for_history(app: Flask, signer: Signer) -> None:
    served, waiting = arrival("C-4", 4), arrival("C-5", 3)
    push(app, signer, served)
    push(app, signer, waiting)
    alice, token = client_of(app, "alice")
    resp = alice.post(f"/api/visits/{served.event_id}/served", headers={"X-CSRF-Token": token})
    assert resp.status_code == 200 and resp.get_json()["served"]["by"] == "alice"
    assert [c["person_id"] for c in cards(alice)] == ["C-5"]
    push(app, signer, arrival("C-4", 1))                     # still walking out: stays served
    assert [c["person_id"] for c in cards(alice)] == ["C-5"]
    everything = cards(alice, all_=True)
    assert {c["person_id"]: bool(c["served"]) for c in everything} == {"C-4": True, "C-5": False}
    assert "C-4" in alice.get("/history").get_data(as_text=True)


def test_cards_age_out_after_card_ttl_and_keep_their_order(app: Flask, signer: Signer,
                                                           clock: ManualClock) -> None:
    for person, minutes in (("C-6", 9), ("C-7", 6), ("C-8", 3)):
        push(app, signer, arrival(person, minutes))
    push(app, signer, arrival("C-6", 1))                     # a repeat does not move C-6 up
    alice, _ = client_of(app, "alice")
    assert [c["person_id"] for c in cards(alice)] == ["C-8", "C-7", "C-6"]
    clock.advance(1800 - 2 * 60)                             # C-7 and C-8: older than 30 min
    assert [c["person_id"] for c in cards(alice)] == ["C-6"]
    assert len(cards(alice, all_=True)) == 3
