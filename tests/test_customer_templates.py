"""A person's templates on their Customers page, and what a desk card's verdict teaches
(issue 22 §2, Done when): the visit verdict the desk cards use queues learning once per
visit from its newest sighting, with the session's user as who decided; the branch admin
sees each template's kind, source, who and when, with a thumbnail where one exists, removes
one (after confirming) and accepts or dismisses a held one; after "Not this person" the
same look, replayed through the edge's track decision on the gallery the indexer made,
makes no match event, so no card.

Real parts: the dashboard under Flask's test client, moto's S3/SQS/SNS/DynamoDB server
behind boto3, the real gallery indexer and enrich_match, the edge's own decide_track."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard.services import services_of
from oneeye.cloud import devices
from oneeye.cloud.dal import gallery_store, store
from oneeye.cloud.functions import enrich_match
from oneeye.cloud.indexer_commands import LearnCommand
from oneeye.events import DeskEvent, MatchEvent
from oneeye.gallery import Matcher
from oneeye.ids import new_id
from oneeye.types import utc_now
from tests import dashboard_helpers as dh
from tests.cloud_support import observe, run_queue
from tests.learning_support import edge_decides, encode, sighting, take_queued

Signer = dh.Signer
SNAPSHOT = "https://snapshots.example/crop-1.jpg"


def enrolled(cloud_app: Flask, env: dict[str, str], examples: Path) -> None:
    """C-1042 (Obama) and C-1003 (Biden) enrolled from the Customers page by ada."""
    ada, token = dh.client_of(cloud_app, "ada")
    for person, photo in (("C-1042", "obama.jpg"), ("C-1003", "biden.jpg")):
        sent = ada.post("/manage/customers/photos", headers={"X-CSRF-Token": token},
                        data={"customer_id": person,
                              "photo": ((examples / photo).open("rb"), photo)})
        assert sent.status_code == 202, sent.get_json()
    assert [r["status"] for r in run_queue(env)] == ["accepted", "accepted"]


def judge(client: FlaskClient, token: str, visit_id: str, said: str | None,
          **extra: Any) -> Any:
    resp = client.post(f"/api/visits/{visit_id}/verdict", json={"verdict": said, **extra},
                       headers={"X-CSRF-Token": token})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def queued_learning(env: dict[str, str]) -> list[LearnCommand]:
    return [LearnCommand.parse(b) for b in take_queued(env["INDEXER_QUEUE_URL"])
            if b.get("action") == "learn"]


def rows(html: str) -> dict[str, str]:
    """The templates table's rows by kind (``data-kind``), each row's HTML."""
    found = re.findall(r'<tr data-template="[^"]+" data-kind="(\w+)"[^>]*>(.*?)</tr>', html,
                       re.S)
    return {kind: row for kind, row in found}


# --------------------------------------------------------------------------- the verdict


def test_a_visit_verdict_queues_one_template_from_its_newest_sighting(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str]) -> None:
    first = sighting("C-1042", [0.01] * 128, seconds_ago=5)
    newest = sighting("C-1042", [0.02] * 128, camera="cam-2")
    for event in (first, newest):
        dh.push(cloud_app, signer, event)
    alice, token = dh.client_of(cloud_app, "alice")
    answer = judge(alice, token, first.event_id, "confirmed", by="mallory")  # cannot say who
    assert answer["learning"] == "queued" and answer["verdict"]["by"] == "alice"
    (command,) = queued_learning(cloud_env)            # once for the visit, not per sighting
    assert (command.kind, command.by, command.person_id) == ("positive", "alice", "C-1042")
    assert command.event_id == newest.event_id
    assert command.encoding == pytest.approx([0.02] * 128)

    assert judge(alice, token, first.event_id, None)["learning"] == "undone"
    assert queued_learning(cloud_env) == []            # an undo queues nothing
    assert judge(alice, token, first.event_id, "rejected")["learning"] == "queued"
    (command,) = queued_learning(cloud_env)
    assert command.kind == "negative"


def test_a_visit_whose_sightings_carry_no_encoding_records_the_verdict_only(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str]) -> None:
    # A watchlist that does not learn: the edge sends no encoding.
    event = sighting("C-1042", None)
    dh.push(cloud_app, signer, event)
    alice, token = dh.client_of(cloud_app, "alice")
    answer = judge(alice, token, event.event_id, "confirmed")
    assert answer["learning"] == "no_encoding"
    assert answer["verdict"]["verdict"] == "confirmed"
    assert queued_learning(cloud_env) == []


def test_a_teller_of_another_site_cannot_judge_a_visit_nor_teach(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str]) -> None:
    event = sighting("C-1042", [0.01] * 128)
    dh.push(cloud_app, signer, event)
    bob, token = dh.client_of(cloud_app, "bob")
    resp = bob.post(f"/api/visits/{event.event_id}/verdict", json={"verdict": "rejected"},
                    headers={"X-CSRF-Token": token})
    assert resp.status_code == 404
    assert queued_learning(cloud_env) == []


# --------------------------------------------------------------------------- the page


def test_the_persons_page_lists_templates_and_removes_one_after_confirming(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str], examples: Path) -> None:
    enrolled(cloud_app, cloud_env, examples)
    look = encode(examples / "knn_examples" / "test" / "obama1.jpg")
    event = sighting("C-1042", look.tolist(), snapshot_url=SNAPSHOT)
    dh.push(cloud_app, signer, event)
    alice, token = dh.client_of(cloud_app, "alice")
    judge(alice, token, event.event_id, "confirmed")
    assert [r["status"] for r in run_queue(cloud_env)] == ["learnt"]

    ada, admin_token = dh.client_of(cloud_app, "ada")
    listing = ada.get("/manage/customers").get_data(as_text=True)
    assert 'href="/manage/customers/C-1042"' in listing
    page = ada.get("/manage/customers/C-1042")
    assert page.status_code == 200
    shown = rows(page.get_data(as_text=True))
    assert set(shown) == {"photo", "sighting"}
    assert "/manage/customers/photo?key=uploads/customers/C-1042/" in shown["photo"]
    assert event.event_id in shown["sighting"] and "alice" in shown["sighting"]
    assert f'src="{SNAPSHOT}"' in shown["sighting"]       # the event's camera crop
    assert re.search(r"<time[^>]*>\d{4}-\d\d-\d\d \d\d:\d\d", shown["sighting"])
    (template_id,) = re.findall(r'/templates/(\w+)/remove', shown["sighting"])

    remove = f"/manage/customers/C-1042/templates/{template_id}/remove"
    asked = ada.post(remove, data={"csrf_token": admin_token, "kind": "sighting",
                                   "thumbnail": SNAPSHOT})
    assert asked.status_code == 200 and "Remove this sighting template" in \
        asked.get_data(as_text=True)
    assert run_queue(cloud_env) == []                  # asking removed nothing
    done = ada.post(remove, data={"csrf_token": admin_token, "kind": "sighting",
                                  "confirmed": "1"})
    assert done.status_code == 302 and done.headers["Location"].endswith(
        "/manage/customers/C-1042")
    assert [r["status"] for r in run_queue(cloud_env)] == ["removed"]
    assert set(rows(ada.get("/manage/customers/C-1042").get_data(as_text=True))) == {"photo"}
    audit = services_of(cloud_app).store.audit.rows(sites=["branch-1"])
    assert any(a["action"] == "template_removed" and a["user_name"] == "ada" for a in audit)


def test_a_sighting_template_has_no_thumbnail_when_the_desk_never_stored_its_event(
        cloud_app: Flask, cloud_env: dict[str, str], examples: Path) -> None:
    from oneeye.cloud.backoffice import Backoffice

    enrolled(cloud_app, cloud_env, examples)
    look = encode(examples / "knn_examples" / "test" / "obama1.jpg")
    Backoffice(cloud_env["ONEEYE_BUCKET"], cloud_env["CASES_TABLE"],
               cloud_env["INDEXER_QUEUE_URL"]).learn(
        "customers", "C-1042", new_id(), look.tolist(), "positive", "carol")
    assert [r["status"] for r in run_queue(cloud_env)] == ["learnt"]
    ada, _ = dh.client_of(cloud_app, "ada")
    shown = rows(ada.get("/manage/customers/C-1042").get_data(as_text=True))
    assert "carol" in shown["sighting"] and "<img" not in shown["sighting"]


def test_a_held_template_is_accepted_or_dismissed_on_the_page(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str], examples: Path) -> None:
    enrolled(cloud_app, cloud_env, examples)
    alice, token = dh.client_of(cloud_app, "alice")
    ada, admin_token = dh.client_of(cloud_app, "ada")
    for photo in ("alex_lacamoire1.jpg", "johnsnow_test1.jpg"):   # mistaken confirmations
        event = sighting("C-1042", encode(examples / "knn_examples" / "test" / photo).tolist())
        dh.push(cloud_app, signer, event)
        judge(alice, token, event.event_id, "confirmed")
    assert [r["status"] for r in run_queue(cloud_env)] == ["needs_review", "needs_review"]
    html = ada.get("/manage/customers/C-1042").get_data(as_text=True)
    held = re.findall(r'/templates/(\w+)/review', html)
    assert len(set(held)) == 2 and html.count("held for review") == 2
    accept, dismiss = sorted(set(held))
    assert ada.post(f"/manage/customers/C-1042/templates/{accept}/review",
                    data={"csrf_token": admin_token, "decision": "accept"}).status_code == 302
    asked = ada.post(f"/manage/customers/C-1042/templates/{dismiss}/review",
                     data={"csrf_token": admin_token, "decision": "dismiss"})
    assert asked.status_code == 200 and "Dismiss this held template" in \
        asked.get_data(as_text=True)
    assert ada.post(f"/manage/customers/C-1042/templates/{dismiss}/review",
                    data={"csrf_token": admin_token, "decision": "dismiss",
                          "confirmed": "1"}).status_code == 302
    assert sorted(r["status"] for r in run_queue(cloud_env)) == ["accepted", "dismissed"]
    kinds = [(k, "held" in row) for k, row in rows(
        ada.get("/manage/customers/C-1042").get_data(as_text=True)).items()]
    assert kinds == [("photo", False), ("sighting", False)]
    assert ada.post(f"/manage/customers/C-1042/templates/{accept}/review",
                    data={"csrf_token": admin_token, "decision": "maybe"}).status_code == 400


def test_a_teller_cannot_open_a_persons_page(cloud_app: Flask) -> None:
    alice, _ = dh.client_of(cloud_app, "alice")
    assert alice.get("/manage/customers/C-1042").status_code == 403


# --------------------------------------------------------------------------- the replay


def test_after_not_this_person_the_same_look_replayed_makes_no_card(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str], examples: Path) -> None:
    """The look is a stranger's that falls 0.3 from C-1042's photo (a false match); it
    goes edge → enrich_match → SNS → the desk, is judged "Not this person" on its card,
    and replayed through the edge's decision on the indexer's next gallery."""
    enrolled(cloud_app, cloud_env, examples)
    devices.register("edge-1", "branch-1", ["door"])
    bucket = store.Bucket(cloud_env["ONEEYE_BUCKET"])
    before, _ = gallery_store.read_latest(bucket, "customers")
    obama = before.encodings[list(before.person_ids).index("C-1042")]
    stranger = obama + 0.3 * np.eye(128, dtype=np.float32)[5]
    desk = observe(cloud_env["DESK_TOPIC_ARN"])

    def replay(matcher: Matcher) -> tuple[bool, int]:
        """The look through the edge and, when the edge announces it, the cloud to the desk:
        (whether the edge made a match event, how many visits the desk has had)."""
        match, fused = edge_decides(matcher, stranger)
        if match is not None:
            event = MatchEvent(device_id="edge-1", site_id="branch-1", camera_id="door",
                               observed_at=utc_now(), person_id=match.person_id,
                               watchlist=match.watchlist, distance=match.distance,
                               margin=match.margin, bbox=(10, 110, 110, 10), track_id=1,
                               frames_seen=3, gallery_version=matcher.versions()["customers"],
                               encoding=fused)
            out = enrich_match.enrich_match({**event.to_dict(), "iot_thing": "edge-1"},
                                            enrich_match.enrich_from_env())
            assert out["status"] == "published", out
            message = desk.drain(wait_s=10)[-1]["Message"]
            assert DeskEvent.model_validate_json(message).match is not None
            dh.post_sns(cloud_app.test_client(), signer.notification(message))
        alice, _ = dh.client_of(cloud_app, "alice")
        return match is not None, len(alice.get("/api/arrivals?all=1").get_json()["visits"])

    assert before.learning.enabled     # so the edge sends the encoding with its event
    assert replay(Matcher([before])) == (True, 1)         # the false match makes a card
    alice, token = dh.client_of(cloud_app, "alice")
    (card,) = alice.get("/api/arrivals").get_json()["visits"]
    assert card["person_id"] == "C-1042"
    assert judge(alice, token, card["visit_id"], "rejected")["learning"] == "queued"
    assert [r["status"] for r in run_queue(cloud_env)] == ["learnt"]
    after, _ = gallery_store.read_latest(bucket, "customers")
    assert after.version == before.version + 1 and after.negatives() == 1

    # no match event, so the desk has only the judged visit, and no card on the desk
    assert replay(Matcher([after])) == (False, 1)
    (judged,) = alice.get("/api/arrivals?all=1").get_json()["visits"]
    assert judged["verdict"]["verdict"] == "rejected"
    match, _ = edge_decides(Matcher([after]), obama)      # C-1042 themselves still pass
    assert match is not None and match.person_id == "C-1042"
