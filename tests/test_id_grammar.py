"""One id grammar for every contract (issue 14 §5).

An enrolled person id with every character the grammar allows (``_ . : @ -``) once
passed ``gallery build`` and failed the match contract: the event was never published
and the sighting was lost. Here such an id (and such device, site and camera ids) goes
through the public entry points end to end: ``oneeye gallery build`` → ``oneeye edge``
→ the ``enrich_match`` Lambda (moto SNS, a real HTTP customer API) → a signed SNS
delivery to the dashboard → the desk's ``/api/events``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from oneeye import gallery as gal
from oneeye import types
from oneeye.cloud import devices
from oneeye.edge.detect import pipeline as pipeline_module
from oneeye.edge.device.runner import load_holder, run_edge
from oneeye.edge.settings import EdgeSettings
from oneeye.events import MATCH, DeskEvent, MatchEvent, parse
from tests.cloud_support import CustomerApiStub, load_app, observe
from tests.dashboard_helpers import Signer, add_user, app_for, login, post_sns

pytestmark = pytest.mark.timeout(600)

ONEEYE = [sys.executable, "-m", "oneeye.cli"]
#: Every character the grammar allows besides letters and digits.
PERSON = "c_1.lin:manuel@bank-7"
DEVICE, SITE, CAMERA = "dev_1.a:b@c-d", "branch_7.north:x@bank-1", "door_1.l:r@cam-2"


def test_the_grammar_allows_exactly_these_characters() -> None:
    for good in (PERSON, DEVICE, SITE, CAMERA, "MP-2026-0001", "a" * 128):
        assert types.is_id(good), good
    for bad in ("", "-x", "a b", "a/b", "a#b", "a+b", "ü", "a" * 129):
        assert not types.is_id(bad), bad


def test_dashboard_routes_take_exactly_the_grammar() -> None:
    """``<id:...>`` route segments match the one grammar; anything else is a 404 by routing."""
    from werkzeug.exceptions import NotFound
    from werkzeug.routing import Map, Rule

    from dashboard.urls import IdConverter

    urls = Map([Rule("/people/<id:person_id>", endpoint="person")],
               converters={"id": IdConverter}).bind("desk.local")
    for good in (PERSON, DEVICE, "MP-2026-0001", "a" * 128):
        assert urls.match(f"/people/{good}") == ("person", {"person_id": good})
    for bad in ("-x", "a b", "a#b", "a+b", "ü", "a" * 129, "..%2Fetc"):
        with pytest.raises(NotFound):
            urls.match(f"/people/{bad}")


def test_an_id_with_every_allowed_character_reaches_the_desk(
        examples: Path, tmp_path: Path, cloud_env: dict[str, str],
        customer_api: CustomerApiStub) -> None:
    # 1. enrol: `oneeye gallery build` with the person's folder named by the id
    person_dir = tmp_path / "enrol" / PERSON
    person_dir.mkdir(parents=True)
    shutil.copy(examples / "lin-manuel-miranda.png", person_dir / "1.png")
    gallery = tmp_path / "customers.npz"
    built = subprocess.run([*ONEEYE, "gallery", "build", str(person_dir.parent), "--watchlist",
                            "customers", "--out", str(gallery)],
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    assert gal.load(gallery).identities() == {PERSON: 1}

    # 2. the edge sees him and writes the match event
    events_out = tmp_path / "events.jsonl"
    edge = subprocess.run(
        [*ONEEYE, "edge", "--source", str(examples / "short_hamilton_clip.mp4"), "--gallery",
         str(gallery), "--events-out", str(events_out), "--publish", "none", "--device-id",
         DEVICE, "--site-id", SITE, "--camera-id", CAMERA],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert edge.returncode == 0, edge.stderr
    lines = events_out.read_text().splitlines()
    assert len(lines) == 1, edge.stderr
    match = parse(lines[0], expect=MATCH)
    assert isinstance(match, MatchEvent)
    assert (match.person_id, match.device_id, match.site_id, match.camera_id) == \
        (PERSON, DEVICE, SITE, CAMERA)

    # 3. the cloud: the IoT rule adds the sender's thing name (topic(3)); the registry
    # vouches for its site and camera; enrich_match joins the customer record and
    # publishes the desk card
    devices.register(DEVICE, SITE, [CAMERA])
    customer_api.customers[PERSON] = {"id": PERSON, "name": "Lin-Manuel Miranda"}
    desk_topic = observe(cloud_env["DESK_TOPIC_ARN"])
    out = load_app("enrich_match").handler({**json.loads(lines[0]), "iot_thing": DEVICE}, None)
    assert out["status"] == "published" and out["degraded"] is False
    envelopes = desk_topic.drain(wait_s=10)
    assert len(envelopes) == 1
    assert envelopes[0]["MessageAttributes"]["site_id"]["Value"] == SITE
    card = DeskEvent.model_validate_json(envelopes[0]["Message"])
    assert card.customer and card.customer["name"] == "Lin-Manuel Miranda"

    # 4. the desk: a signed SNS delivery, then the teller's event list
    signer = Signer()
    (tmp_path / "dash").mkdir()
    app = app_for(tmp_path / "dash", signer)
    add_user(app, "teller_1.a@bank-7", [SITE])
    client = app.test_client()
    delivered = post_sns(client, signer.notification(envelopes[0]["Message"], site_attr=SITE))
    assert delivered.status_code < 300
    login(client, "teller_1.a@bank-7")
    shown = client.get("/api/events").get_json()["events"]
    assert [(e["event_id"], e["site_id"], e["event"]["match"]["person_id"]) for e in shown] == \
        [(match.event_id, SITE, PERSON)]
    by_person = client.get("/api/events", query_string={"person": PERSON}).get_json()["events"]
    assert [e["event_id"] for e in by_person] == [match.event_id]


def test_an_event_that_fails_to_build_does_not_consume_the_cooldown(
        examples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g, report = gal.enrol([(PERSON, examples / "lin-manuel-miranda.png")],
                          watchlist="customers")
    assert not report.rejected
    gallery = tmp_path / "customers.npz"
    gal.save(g, gallery)
    failures: list[str] = []

    def fails_once(**fields: object) -> MatchEvent:
        # A contract the event cannot meet, once: the sighting must not be used up by it.
        if not failures:
            failures.append(str(fields["person_id"]))
            raise ValidationError.from_exception_data("MatchEvent", [])
        return MatchEvent(**fields)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline_module, "MatchEvent", fails_once)
    clip = str(examples / "short_hamilton_clip.mp4")
    settings = EdgeSettings(cameras={"cam-1": {"source": clip}},  # type: ignore[dict-item]
                            galleries=[gallery])
    events: list[MatchEvent] = []
    run_edge(settings, load_holder(settings), sinks=[events.append])
    assert failures == [PERSON]
    assert [e.person_id for e in events] == [PERSON]
