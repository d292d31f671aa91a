"""The desk teaches the gallery (issue 22 §2, §5): a verdict on a stored sighting queues what
the indexer learns from it, with the session's user as who decided; a customer photo unlike
the person's other photos is shown as held for a second look, not as accepted or refused.

Real parts: the dashboard app under Flask's test client, moto's SQS/S3 server behind boto3
(the indexer queue is read as the indexer would), the real gallery indexer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard.auth import hash_password
from dashboard.services import services_of
from oneeye import aws
from oneeye.cloud.indexer_commands import LearnCommand
from oneeye.events import DeskEvent
from tests import dashboard_helpers as dh
from tests.cloud_support import run_queue

Signer = dh.Signer
#: A sighting's fused encoding as the edge sends it (128 floats).
ENCODING = [round(0.01 * (i % 17) - 0.08, 4) for i in range(128)]


@pytest.fixture
def cloud_app(tmp_path: Path, signer: Signer, cloud_env: dict[str, str]) -> Flask:
    """A dashboard connected to the test cloud: alice (teller, branch-1), bob (teller,
    branch-2), ada (branch admin, branch-1)."""
    app = dh.app_for(tmp_path, signer, cloud={
        "bucket": cloud_env["ONEEYE_BUCKET"], "cases_table": cloud_env["CASES_TABLE"],
        "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"]})
    users = services_of(app).store.users
    digest = hash_password(dh.PASSWORD)
    users.put("alice", digest, ["branch-1"])
    users.put("bob", digest, ["branch-2"])
    users.put("ada", digest, ["branch-1"], role="branch_admin")
    return app


def client_of(app: Flask, name: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert dh.login(client, name).status_code == 302
    return client, dh.csrf_from(client.get("/login").get_data(as_text=True))


def stored(app: Flask, signer: Signer, *, encoding: list[float] | None) -> DeskEvent:
    """A customer arrival at branch-1 delivered to the desk over SNS, as enrich_match sends it."""
    event = dh.desk_event("branch-1", person_id="C-1042")
    assert event.match is not None
    event = event.model_copy(update={"match": event.match.model_copy(
        update={"encoding": encoding})})
    resp = dh.post_sns(app.test_client(), signer.notification(event.to_json()))
    assert resp.status_code == 200, resp.get_json()
    return event


def queued(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every command waiting on the indexer queue (S3's setup test event left out), taken off."""
    sqs, out = aws.client("sqs"), []
    while msgs := sqs.receive_message(QueueUrl=env["INDEXER_QUEUE_URL"],
                                      MaxNumberOfMessages=10).get("Messages", []):
        for m in msgs:
            sqs.delete_message(QueueUrl=env["INDEXER_QUEUE_URL"],
                               ReceiptHandle=m["ReceiptHandle"])
            body = json.loads(m["Body"])
            if body.get("Event") != "s3:TestEvent":
                out.append(body)
    return out


def verdict(client: FlaskClient, token: str, event: DeskEvent, said: str,
            **extra: Any) -> Any:
    return client.post(f"/api/events/{event.event_id}/feedback",
                       json={"verdict": said, **extra}, headers={"X-CSRF-Token": token})


def test_confirm_queues_a_template_with_the_sessions_user_as_who_decided(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str]) -> None:
    event = stored(cloud_app, signer, encoding=ENCODING)
    assert event.match is not None
    alice, token = client_of(cloud_app, "alice")
    resp = verdict(alice, token, event, "confirmed", by="mallory")   # a payload cannot say who
    assert resp.status_code == 200 and resp.get_json()["learning"] == "queued"
    (body,) = queued(cloud_env)
    command = LearnCommand.parse(body)
    assert command.kind == "positive" and command.by == "alice"
    assert (command.watchlist, command.person_id) == ("customers", "C-1042")
    assert command.event_id == event.match.event_id
    assert command.encoding == pytest.approx(ENCODING)


def test_not_this_person_queues_a_negative_template(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str]) -> None:
    event = stored(cloud_app, signer, encoding=ENCODING)
    alice, token = client_of(cloud_app, "alice")
    resp = verdict(alice, token, event, "rejected")
    assert resp.status_code == 200 and resp.get_json()["learning"] == "queued"
    (body,) = queued(cloud_env)
    command = LearnCommand.parse(body)
    assert command.kind == "negative" and command.by == "alice"


def test_a_sighting_without_an_encoding_records_the_verdict_and_queues_nothing(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str]) -> None:
    # The edge sends an encoding only when the matched watchlist's gallery learns.
    event = stored(cloud_app, signer, encoding=None)
    alice, token = client_of(cloud_app, "alice")
    resp = verdict(alice, token, event, "confirmed")
    assert resp.status_code == 200
    assert resp.get_json()["learning"] == "no_encoding" and resp.get_json()["verdict"] == \
        "confirmed"
    assert queued(cloud_env) == []


def test_a_teller_of_another_site_cannot_give_a_verdict_nor_teach(
        cloud_app: Flask, signer: Signer, cloud_env: dict[str, str]) -> None:
    event = stored(cloud_app, signer, encoding=ENCODING)
    bob, token = client_of(cloud_app, "bob")
    assert verdict(bob, token, event, "rejected").status_code in (403, 404)
    assert queued(cloud_env) == []
    record = services_of(cloud_app).store.events.get(event.event_id)
    assert record is not None and record["feedback"] is None


def test_a_customer_photo_unlike_their_others_shows_as_held_for_a_second_look(
        cloud_app: Flask, cloud_env: dict[str, str], examples: Path) -> None:
    train = examples / "knn_examples" / "train"
    ada, token = client_of(cloud_app, "ada")

    def send(path: Path) -> str:
        sent = ada.post("/manage/customers/photos", headers={"X-CSRF-Token": token},
                        data={"customer_id": "C-1042", "photo": (path.open("rb"), path.name)})
        assert sent.status_code == 202, sent.get_json()
        return str(sent.get_json()["upload_id"])

    first = send(train / "obama" / "obama.jpg")
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"]
    other = send(train / "biden" / "biden2.jpg")                    # someone else's face
    assert [r["status"] for r in run_queue(cloud_env)] == ["needs_review"]
    assert ada.get(f"/manage/customers/photos/{first}").get_json()["state"] == "accepted"
    shown = ada.get(f"/manage/customers/photos/{other}").get_json()
    assert shown["state"] == "needs_review" and shown["reason"] == "unlike_person"
    assert shown["gallery_version"] is None                   # not in any gallery version
    assert "is it the same person?" in shown["message"]
    # The page's script says "Held for a second look", not "Rejected" nor "Accepted".
    script = ada.get("/static/manage.js").get_data(as_text=True)
    assert 'needs_review: "Held for a second look: "' in script
