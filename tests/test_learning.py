"""Learning from desk verdicts (issue 22 §2, §5): templates with their source, negative
templates, a review for what looks wrong, one face under two ids, and gallery files of
format 1 still read."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oneeye import aws, faces
from oneeye import gallery as gal
from oneeye.cloud.backoffice import Backoffice
from oneeye.cloud.dal import gallery_store, store
from oneeye.events import MAX_EVENT_BYTES, MatchEvent, utc_now
from oneeye.gallery.templates import LearningRule, TemplateSource, template_id
from oneeye.ids import new_id
from tests.cloud_support import load_handler, run_queue

ONEEYE = [sys.executable, "-m", "oneeye.cli"]
BILL, ANA = "Bill_Gates", "Ana_Guevara"


def _encode(path: Path) -> np.ndarray:
    image = faces.load_image(path)
    (enc,) = faces.encode(image, faces.detect(image))
    return enc


@pytest.fixture(scope="module")
def looks(lfw: Path) -> dict[str, list[np.ndarray]]:
    """Single-look encodings of two enrolled people's probes."""
    return {
        BILL: [_encode(p) for p in sorted((lfw / "probes" / BILL).glob("*.jpg"))],
        ANA: [_encode(p) for p in sorted((lfw / "probes" / ANA).glob("*.jpg"))],
    }


@pytest.fixture(scope="module")
def enrolled(lfw: Path) -> gal.Gallery:
    g, report = gal.enrol([(p, sorted((lfw / "gallery" / p).glob("*.jpg"))[0])
                           for p in (BILL, ANA)], watchlist="customers")
    assert not report.rejected
    return g


def sighting(event_id: str, by: str = "teller1") -> TemplateSource:
    return TemplateSource("sighting", event_id, by, utc_now())


# --------------------------------------------------------------------------- the gallery


def test_not_this_person_makes_the_same_look_replayed_unannounced(
        enrolled: gal.Gallery) -> None:
    person = enrolled.person_ids[0]
    false_look = enrolled.encodings[0] + 0.3 * np.eye(128, dtype=np.float32)[5]
    assert enrolled.match(false_look) is not None, "precondition: the look is a false match"
    g = enrolled.with_template(str(person), false_look, TemplateSource("negative", "ev-1"))
    (c,) = g.nearest(false_look)
    assert c.vetoed and g.match(false_look) is None
    # the person's own photo stays theirs: it is further than the veto distance
    assert g.match(enrolled.encodings[0]) is not None
    assert [t.kind for t in g.templates(str(person))] == ["photo", "negative"]


def test_templates_carry_their_source_and_are_removable_one_by_one(
        enrolled: gal.Gallery) -> None:
    person = str(enrolled.person_ids[0])
    look = enrolled.encodings[0] + 0.05
    g = enrolled.with_template(person, look, sighting("01JEVENT00001", "alice"))
    kinds = {t.kind: t for t in g.templates(person)}
    assert kinds["sighting"].source == "01JEVENT00001" and kinds["sighting"].by == "alice"
    assert kinds["photo"].source.endswith(".jpg")
    assert g.version == enrolled.version + 1
    assert g.with_template(person, look, sighting("again")) is g   # same encoding: one template
    smaller = g.without_template(person, template_id(look))
    assert [t.kind for t in smaller.templates(person)] == ["photo"]
    assert smaller.without_template(person, "0" * 16) is smaller


def test_the_cap_drops_the_oldest_sighting_template_never_a_photo(
        enrolled: gal.Gallery) -> None:
    person = str(enrolled.person_ids[0])
    g = enrolled.with_learning(LearningRule(max_sighting_templates=2))
    for i in range(4):
        g = g.with_template(person, enrolled.encodings[0] + 0.01 * (i + 1),
                            TemplateSource("sighting", f"ev-{i}", "t",
                                           f"2026-01-0{i + 1}T00:00:00Z"))
    kept = g.templates(person)
    assert [t.kind for t in kept].count("photo") == 1
    assert sorted(t.source for t in kept if t.kind == "sighting") == ["ev-2", "ev-3"]


def test_gallery_show_lists_each_persons_templates_negatives_and_their_sources(
        enrolled: gal.Gallery, tmp_path: Path) -> None:
    bill = enrolled.encodings[list(enrolled.person_ids).index(BILL)]
    g = enrolled.with_template(BILL, bill + 0.02, TemplateSource(
        "sighting", "01JEVENT00007", "alice", "2026-03-01T10:00:00Z"))
    g = g.with_template(ANA, bill + 0.3 * np.eye(128, dtype=np.float32)[3], TemplateSource(
        "negative", "01JEVENT00008", "bob", "2026-03-01T11:00:00Z"))
    path = tmp_path / "learnt.npz"
    gal.save(g, path)
    shown = json.loads(subprocess.run([*ONEEYE, "gallery", "show", str(path), "--json"],
                                      capture_output=True, text=True, timeout=600,
                                      check=True).stdout)
    assert shown["negatives"] == 1 and shown["duplicates"] == []
    bills = {t["kind"]: t for t in shown["templates"][BILL]}
    assert set(bills) == {"photo", "sighting"}
    assert (bills["sighting"]["source"], bills["sighting"]["by"], bills["sighting"]["at"]) == \
        ("01JEVENT00007", "alice", "2026-03-01T10:00:00Z")
    assert [t["kind"] for t in shown["templates"][ANA]] == ["photo", "negative"]
    text = subprocess.run([*ONEEYE, "gallery", "show", str(path)], capture_output=True,
                          text=True, timeout=600, check=True).stdout
    assert f"{BILL}: 1 photo, 1 sighting" in text and f"{ANA}: 1 photo, 1 negative" in text
    assert "sighting 01JEVENT00007 by alice at 2026-03-01T10:00:00Z" in text
    assert "negative 01JEVENT00008 by bob at 2026-03-01T11:00:00Z" in text


def test_format_1_files_are_still_read(enrolled: gal.Gallery) -> None:
    buf = io.BytesIO()   # exactly what a format-1 writer stored
    np.savez(buf, encodings=enrolled.encodings, person_ids=enrolled.person_ids,
             meta=np.array(json.dumps({"watchlist": "customers", "version": 7,
                                       "rule": {"max_distance": 0.525, "min_margin": 0.085},
                                       "created_at": "2026-01-01T00:00:00Z"})))
    g = gal.from_bytes(buf.getvalue(), sha256=None)
    assert g.version == 7 and len(g) == len(enrolled) and g.negatives() == 0
    assert {t.kind for t in g.templates(str(g.person_ids[0]))} == {"photo"}
    assert not g.learning.enabled
    again = gal.from_bytes(gal.to_bytes(g.with_template(
        str(g.person_ids[0]), g.encodings[0] + 0.3, TemplateSource("negative", "ev-x"))),
        sha256=None)
    assert again.negatives() == 1 and again.templates(str(g.person_ids[0]))[-1].source == "ev-x"


def test_a_newer_file_format_is_refused_by_name(enrolled: gal.Gallery) -> None:
    with np.load(io.BytesIO(gal.to_bytes(enrolled))) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "format": 99}))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(gal.files.GalleryError, match="format 99 is newer"):
        gal.from_bytes(buf.getvalue(), sha256=None)


def test_one_face_under_two_ids_is_reported_at_build_and_still_identified(
        tmp_path: Path, examples: Path) -> None:
    """../shared/cases/duplicate-enrolment: C-1001 and C-2002 are both Obama."""
    train = examples / "knn_examples" / "train"
    for pid, photo in [("C-1001", "obama/obama.jpg"), ("C-2002", "obama/obama2.jpg"),
                       ("C-1003", "biden/biden.jpg"), ("C-1004", "kit_harington/john1.jpeg"),
                       ("C-1005", "rose_leslie/img1.jpg")]:
        (tmp_path / "src" / pid).mkdir(parents=True)
        shutil.copy(train / photo, tmp_path / "src" / pid)
    out = tmp_path / "dup.npz"
    built = subprocess.run([*ONEEYE, "gallery", "build", str(tmp_path / "src"), "--watchlist",
                            "customers", "--out", str(out)], capture_output=True, text=True,
                           timeout=600, check=True)
    assert "duplicate C-1001 C-2002" in built.stdout and "same person" in built.stdout
    shown = json.loads(subprocess.run([*ONEEYE, "gallery", "show", str(out), "--json"],
                                      capture_output=True, text=True, timeout=600,
                                      check=True).stdout)
    assert [(d["person_a"], d["person_b"]) for d in shown["duplicates"]] == [("C-1001", "C-2002")]
    test = examples / "knn_examples" / "test"
    ident = subprocess.run([*ONEEYE, "identify", "--gallery", str(out), str(test / "obama1.jpg"),
                            str(test / "obama_and_biden.jpg")], capture_output=True, text=True,
                           timeout=600, check=True)
    lines = [json.loads(line) for line in ident.stdout.splitlines()]
    assert lines[0]["faces"][0]["person_id"] in {"C-1001", "C-2002"}
    ids = {f["person_id"] for f in lines[1]["faces"]}
    assert "C-1003" in ids and ids & {"C-1001", "C-2002"}


def test_two_different_people_are_not_grouped(enrolled: gal.Gallery) -> None:
    assert enrolled.duplicates() == []


# --------------------------------------------------------------------------- the edge


def test_the_encoding_fits_the_event_beside_a_full_snapshot() -> None:
    event = MatchEvent(device_id="dev-1", site_id="site-1", camera_id="cam-1",
                       observed_at=utc_now(), person_id="C-1", watchlist="customers",
                       distance=0.4, margin=0.2, bbox=(1, 2, 3, 0), track_id=1,
                       frames_seen=3, gallery_version=2, snapshot_jpeg="A" * 90_000,
                       encoding=[-0.123456] * 128)
    assert len(event.to_json().encode()) < MAX_EVENT_BYTES
    with pytest.raises(ValueError):
        MatchEvent.model_validate({**event.to_dict(), "encoding": [0.1] * 127})


# --------------------------------------------------------------------------- the cloud


@pytest.fixture
def cloud(cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
          enrolled: gal.Gallery) -> Backoffice:
    monkeypatch.setenv("LEARN_WATCHLISTS", "customers")
    load_handler("gallery_indexer")
    gallery_store.write_version(store.Bucket(cloud_env["ONEEYE_BUCKET"]), enrolled)
    return Backoffice(bucket=cloud_env["ONEEYE_BUCKET"], cases_table=cloud_env["CASES_TABLE"],
                      indexer_queue_url=cloud_env["INDEXER_QUEUE_URL"])


def test_confirm_adds_a_template_listed_by_the_backoffice_and_removable(
        cloud: Backoffice, cloud_env: dict[str, str], looks: dict[str, list[np.ndarray]]
        ) -> None:
    look = looks[BILL][0]
    event_id = new_id()
    cloud.learn("customers", BILL, event_id, look.tolist(), "positive", "teller1")
    assert [r["status"] for r in run_queue(cloud_env)] == ["learnt"]
    listed = cloud.templates("customers", BILL)
    learnt = [t for t in listed if t["kind"] == "sighting"]
    assert learnt and learnt[0]["source"] == event_id and learnt[0]["by"] == "teller1"
    assert learnt[0]["state"] == "active"
    g, _ = gallery_store.read_latest(store.Bucket(cloud_env["ONEEYE_BUCKET"]), "customers")
    assert g.learning.enabled   # so edges send encodings for this watchlist
    cloud.remove_template("customers", BILL, learnt[0]["template_id"], "teller1")
    assert [r["status"] for r in run_queue(cloud_env)] == ["removed"]
    assert [t["kind"] for t in cloud.templates("customers", BILL)] == ["photo"]


def test_not_this_person_queued_from_the_desk_silences_the_replayed_look(
        cloud: Backoffice, cloud_env: dict[str, str], enrolled: gal.Gallery) -> None:
    person = str(enrolled.person_ids[0])
    false_look = enrolled.encodings[0] + 0.3 * np.eye(128, dtype=np.float32)[5]
    cloud.learn("customers", person, new_id(), false_look.tolist(), "negative", "teller1")
    assert [r["status"] for r in run_queue(cloud_env)] == ["learnt"]
    g, _ = gallery_store.read_latest(store.Bucket(cloud_env["ONEEYE_BUCKET"]), "customers")
    assert g.match(false_look) is None and enrolled.match(false_look) is not None


def test_a_confirmed_look_far_from_the_person_is_held_for_review(
        cloud: Backoffice, cloud_env: dict[str, str], enrolled: gal.Gallery,
        looks: dict[str, list[np.ndarray]]) -> None:
    other = looks[ANA][0]      # a mistaken confirmation: Ana's look confirmed as Bill
    cloud.learn("customers", BILL, new_id(), other.tolist(), "positive", "teller1")
    (result,) = run_queue(cloud_env)
    assert result["status"] == "needs_review" and result["reason"] == "far_template"
    held = [t for t in cloud.templates("customers", BILL) if t["state"] == "needs_review"]
    assert held and held[0]["reason"] == "far_template" and "not learnt" in held[0]["message"]
    g, _ = gallery_store.read_latest(store.Bucket(cloud_env["ONEEYE_BUCKET"]), "customers")
    assert g.version == enrolled.version
    cloud.review_template("customers", BILL, held[0]["template_id"], "dismiss", "admin")
    assert [r["status"] for r in run_queue(cloud_env)] == ["dismissed"]
    assert all(t["state"] == "active" for t in cloud.templates("customers", BILL))


def test_learning_is_refused_for_a_watchlist_that_does_not_learn(
        cloud: Backoffice, cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        looks: dict[str, list[np.ndarray]]) -> None:
    monkeypatch.setenv("LEARN_WATCHLISTS", "")
    cloud.learn("customers", BILL, new_id(), looks[BILL][0].tolist(), "positive", "teller1")
    (result,) = run_queue(cloud_env)
    assert result["status"] == "rejected" and "learning_off" in result["reason"]


def _deliver(env: dict[str, str], message: dict[str, Any]) -> list[dict[str, Any]]:
    """Hand ``message`` (an SQS message as received) to a fresh indexer, Lambda-style."""
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": message["MessageId"],
                          "body": message["Body"], "receiptHandle": message["ReceiptHandle"]}]}
    results: list[dict[str, Any]] = load_handler("gallery_indexer")(event, None)["results"]
    return results


def _receive_one(env: dict[str, str]) -> dict[str, Any]:
    msgs = aws.client("sqs").receive_message(QueueUrl=env["INDEXER_QUEUE_URL"],
                                             MaxNumberOfMessages=10).get("Messages", [])
    (message,) = [m for m in msgs if json.loads(m["Body"]).get("Event") != "s3:TestEvent"]
    aws.client("sqs").delete_message(QueueUrl=env["INDEXER_QUEUE_URL"],
                                     ReceiptHandle=message["ReceiptHandle"])
    return message


def test_a_redelivered_template_removal_does_not_remove_it_again_after_it_was_readded(
        cloud: Backoffice, cloud_env: dict[str, str], looks: dict[str, list[np.ndarray]]
        ) -> None:
    look, event_id = looks[BILL][0], new_id()
    cloud.learn("customers", BILL, event_id, look.tolist(), "positive", "teller1")
    assert [r["status"] for r in run_queue(cloud_env)] == ["learnt"]
    (learnt,) = [t for t in cloud.templates("customers", BILL) if t["kind"] == "sighting"]
    cloud.remove_template("customers", BILL, learnt["template_id"], "teller1")
    removal = _receive_one(cloud_env)
    assert json.loads(removal["Body"])["command_id"]    # the producer names its command
    assert [r["status"] for r in _deliver(cloud_env, removal)] == ["removed"]
    # The same look confirmed again: the very same template id is back.
    cloud.learn("customers", BILL, new_id(), look.tolist(), "positive", "teller1")
    assert [r["status"] for r in run_queue(cloud_env)] == ["learnt"]
    # SQS redelivers the removal (its visibility ran out before the delete reached SQS).
    (again,) = _deliver(cloud_env, removal)
    assert again["status"] == "duplicate" and again["action"] == "remove_template"
    assert learnt["template_id"] in [t["template_id"]
                                     for t in cloud.templates("customers", BILL)]


def test_a_command_queued_before_commands_had_ids_is_done_once_per_sqs_message(
        cloud: Backoffice, cloud_env: dict[str, str], looks: dict[str, list[np.ndarray]]
        ) -> None:
    body = {"action": "learn", "watchlist": "customers", "person_id": BILL,
            "event_id": new_id(), "encoding": looks[BILL][1].tolist(), "kind": "negative",
            "by": "teller1", "at": utc_now()}                # no command_id: an old message
    store.send(cloud_env["INDEXER_QUEUE_URL"], json.dumps(body))
    message = _receive_one(cloud_env)
    assert [r["status"] for r in _deliver(cloud_env, message)] == ["learnt"]
    (again,) = _deliver(cloud_env, message)
    assert again["status"] == "duplicate" and again["command"] == f"sqs:{message['MessageId']}"
