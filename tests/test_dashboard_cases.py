"""The agency's side of a case (issue 20), as a specification: every role has a home, error
pages keep the navigation, an officer sees every sighting of their agency's cases across
sites and nothing of another agency's, the case page updates live in the agency's room, and
closing a case is one story on every desk."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard import socketio_of
from dashboard.auth import hash_password
from dashboard.services import services_of
from oneeye.alerting import SAFETY_LINE
from oneeye.events import DeskEvent
from oneeye.types import utc_now
from tests import dashboard_helpers as dh

Signer = dh.Signer
CASE, OTHER = "MP-2026-0042", "MP-2026-0099"


@pytest.fixture
def desk_users() -> dict[str, list[str]]:
    return {"alice": ["branch-1"], "bob": ["branch-2"]}


@pytest.fixture
def app_options(tmp_path: Path) -> dict[str, Any]:
    return {"alert_outbox_path": tmp_path / "alert_outbox.jsonl"}


@pytest.fixture(autouse=True)
def officers(app: Flask) -> None:
    """olga (County Police) and otto (Other Agency), officers of two agencies."""
    users = services_of(app).store.users
    digest = hash_password(dh.PASSWORD)
    users.create("olga", digest, [], role="agency_officer", agency="County Police")
    users.create("otto", digest, [], role="agency_officer", agency="Other Agency")


def client_of(app: Flask, name: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert dh.login(client, name).status_code == 302
    return client, dh.csrf_from(client.get("/login").get_data(as_text=True))


def told(message_id: str, to: str = "+441865000000") -> list[dict[str, Any]]:
    return [{"channel": "subscribers", "to": None, "outcome": "sent",
             "at": "2026-02-14T20:45:00.000Z", "message_id": f"alert-{message_id}"},
            {"channel": "sms", "to": to, "outcome": "sent", "at": "2026-02-14T20:45:01.000Z",
             "message_id": message_id}]


def sighting(case: str = CASE, site: str = "branch-1", camera: str = "cam-1", *,
             agency: str = "County Police", message_id: str = "sms-1") -> DeskEvent:
    event = dh.desk_event(site, "missing_person_sighted", person_id=case, name="Lin Miranda",
                          device_id=camera, snapshot_url=f"http://127.0.0.1:9/{camera}.jpg")
    assert event.case is not None
    return event.model_copy(update={"case": {**event.case, "agency": agency,
                                             "told": told(message_id)}})


def push(app: Flask, signer: Signer, event: DeskEvent) -> None:
    resp = dh.post_sns(app.test_client(), signer.notification(event.to_json()))
    assert resp.status_code == 200, resp.get_json()


def test_each_role_lands_on_its_own_home_after_login(app: Flask) -> None:
    for name, home in (("alice", "/"), ("olga", "/cases")):
        resp = dh.login(app.test_client(), name)
        assert resp.headers["Location"] == home, name
    asked = app.test_client()
    page = asked.get("/login")
    resp = asked.post("/login?next=/alerts", data={
        "username": "olga", "password": dh.PASSWORD,
        "csrf_token": dh.csrf_from(page.get_data(as_text=True))})
    assert resp.headers["Location"] == "/alerts"           # a page asked for still wins


def test_error_pages_keep_the_navigation_and_say_what_the_user_can_open(app: Flask) -> None:
    alice, _ = client_of(app, "alice")
    forbidden = alice.get("/cases")
    page = forbidden.get_data(as_text=True)
    assert forbidden.status_code == 403
    assert "this page is for: agency officer" in page
    assert "Log out" in page and 'href="/history"' in page      # the navigation stays
    assert "You can open instead" in page and 'class="home">Desk</a>' in page
    olga, _ = client_of(app, "olga")
    missing = olga.get("/nowhere")
    assert missing.status_code == 404
    assert 'class="home">Cases</a>' in missing.get_data(as_text=True)
    refused = olga.post("/cases/MP-2026-0042/close", data={"csrf_token": "wrong"})
    assert refused.status_code == 400
    assert "reload the page" in refused.get_data(as_text=True)
    assert 'href="/cases"' in refused.get_data(as_text=True)
    assert olga.get("/api/nowhere").get_json()["error"] == "Not Found"  # the API stays JSON


def test_an_officer_sees_every_sighting_of_their_agencys_case_across_sites_and_no_other(
        app: Flask, signer: Signer) -> None:
    ours = [sighting(site="branch-1", camera="cam-1"), sighting(site="branch-2", camera="cam-7")]
    theirs = sighting(OTHER, agency="Other Agency", message_id="sms-other")
    for event in (*ours, theirs):
        push(app, signer, event)
    alice, token = client_of(app, "alice")
    assert alice.post(f"/api/events/{ours[0].event_id}/feedback", json={"verdict": "confirmed"},
                      headers={"X-CSRF-Token": token}).status_code == 200
    [group] = [g for g in alice.get("/api/alerts").get_json()["alerts"] if g["subject"] == CASE]
    assert alice.post("/api/alerts/ack", headers={"X-CSRF-Token": token}, json={
        "kind": group["kind"], "subject": group["subject"],
        "upto_seq": group["upto_seq"]}).status_code == 200

    olga, _ = client_of(app, "olga")
    story = olga.get(f"/api/cases/{CASE}").get_json()
    by_site = {s["site_id"]: s for s in story["sightings"]}
    assert set(by_site) == {"branch-1", "branch-2"}                 # across sites
    assert by_site["branch-1"]["ack"]["by"] == "alice"
    assert by_site["branch-1"]["feedback"]["verdict"] == "confirmed"
    assert by_site["branch-2"]["ack"] is None
    assert by_site["branch-2"]["strength_text"] == "strong match"
    assert [t["to"] for t in by_site["branch-1"]["told"]] == [None, "+441865000000"]
    # another agency's case answers exactly like one that does not exist: ids do not leak
    for case in (OTHER, "MP-2026-7777"):
        resp = olga.get(f"/api/cases/{case}")
        assert resp.status_code == 404 and resp.get_json()["reason"] == (
            f"no case {case} for your agency")
        assert olga.get(f"/cases/{case}").status_code == 404
    otto, _ = client_of(app, "otto")
    assert [s["site_id"] for s in otto.get(f"/api/cases/{OTHER}").get_json()["sightings"]] \
        == ["branch-1"]
    assert otto.get(f"/api/cases/{CASE}").status_code == 404

    page = html.unescape(olga.get(f"/cases/{CASE}").get_data(as_text=True))
    assert 'href="http://127.0.0.1:9/cam-7.jpg" target="_blank"' in page   # crop, full size
    page = re.sub(r"<[^>]+>", "", page)                                    # the words read
    assert "Acknowledged by alice" in page and "Confirmed — alice" in page
    assert "SMS to +441865000000 sent" in page
    listing = html.unescape(olga.get("/cases").get_data(as_text=True))
    assert "seen 2× at branch-1, branch-2" in listing and OTHER not in listing
    # a bank user's scope stays their sites: bob (branch-2) sees one of the case's sightings
    bob, _ = client_of(app, "bob")
    assert [r["site_id"] for r in bob.get(f"/api/events?person_id={CASE}").get_json()[
        "events"]] == ["branch-2"]


def test_the_case_page_is_live_in_the_agency_room_only(app: Flask, signer: Signer) -> None:
    sio = socketio_of(app)
    sockets = {}
    for name in ("olga", "otto", "alice"):
        client, _ = client_of(app, name)
        sockets[name] = sio.test_client(app, flask_test_client=client)
        sockets[name].get_received()
    push(app, signer, sighting(site="branch-2"))            # alice's desk is branch-1

    def names(who: str) -> list[str]:
        return [m["name"] for m in sockets[who].get_received()]

    assert names("olga") == ["desk_event"]
    assert names("otto") == []                       # another agency's room
    assert names("alice") == []                      # another site's desk


def test_alerts_page_shows_an_officer_the_messages_about_their_agencys_cases(
        app: Flask, signer: Signer, tmp_path: Path) -> None:
    push(app, signer, sighting(message_id="sms-ours"))
    push(app, signer, sighting(OTHER, agency="Other Agency", message_id="sms-theirs"))
    lines = [{"kind": "sms", "to": "+441865000000", "body": "OURS", "site_id": None,
              "direct": True, "message_id": "sms-ours", "sent_at": "2026-02-14T20:45:01Z"},
             {"kind": "sms", "to": "+441865000001", "body": "THEIRS", "site_id": None,
              "direct": True, "message_id": "sms-theirs"},
             {"kind": "email", "to": "desk@bank", "body": "SUBSCRIBERS", "site_id": "branch-1",
              "event_id": "alert-sms-ours"}]
    (tmp_path / "alert_outbox.jsonl").write_text("\n".join(json.dumps(m) for m in lines))
    olga, _ = client_of(app, "olga")
    page = olga.get("/alerts").get_data(as_text=True)
    assert "OURS" in page and "SUBSCRIBERS" in page and "THEIRS" not in page
    alice, _ = client_of(app, "alice")
    page = alice.get("/alerts").get_data(as_text=True)
    assert "SUBSCRIBERS" in page and "OURS" not in page     # a teller: their sites' lines


def test_closing_a_case_is_one_story_on_every_desk(
        tmp_path: Path, signer: Signer, cloud_env: dict[str, str]) -> None:
    from oneeye.cloud.dal import store as cloud_store

    cases = cloud_store.Cases(cloud_env["CASES_TABLE"])
    cases.upsert(CASE, {"status": "pending", "agency": "County Police", "name": "Lin",
                        "reported_by": "PC 1234 Smith"})
    cases.upsert(CASE, {"status": "open", "opened_at": utc_now()})
    # its own dashboard (own database), connected to the cloud, with its own users
    (tmp_path / "connected").mkdir()
    app = dh.app_for(tmp_path / "connected", signer, cloud={
        "bucket": cloud_env["ONEEYE_BUCKET"], "cases_table": cloud_env["CASES_TABLE"],
        "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"]})
    digest = hash_password(dh.PASSWORD)
    services_of(app).store.users.create("alice", digest, ["branch-1"])
    services_of(app).store.users.create("olga", digest, [], role="agency_officer",
                                        agency="County Police")
    for camera in ("cam-1", "cam-2"):
        push(app, signer, sighting(camera=camera))
    alice, token = client_of(app, "alice")
    [group] = alice.get("/api/alerts").get_json()["alerts"]
    assert group["safety"] == SAFETY_LINE and group["closed"] is None
    alice.post("/api/alerts/ack", headers={"X-CSRF-Token": token}, json={
        "kind": group["kind"], "subject": CASE, "upto_seq": group["upto_seq"]})
    push(app, signer, sighting(camera="cam-3"))                   # seen again after the ack
    [again] = alice.get("/api/alerts").get_json()["alerts"]
    assert (again["count"], again["total"], again["reraised"]["by"]) == (1, 3, "alice")

    desk = socketio_of(app).test_client(app, flask_test_client=alice)
    desk.get_received()
    olga, olga_token = client_of(app, "olga")
    closed = olga.post(f"/cases/{CASE}/close", data={"csrf_token": olga_token})
    assert closed.headers["Location"] == f"/cases/{CASE}"
    [told_desk] = [m["args"][0] for m in desk.get_received() if m["name"] == "case_closed"]
    assert (told_desk["case_id"], told_desk["by"]) == (CASE, "olga")
    [after] = alice.get("/api/alerts").get_json()["alerts"]      # after a reload too
    assert after["closed"] == {"by": "olga", "at": told_desk["at"]}
    history = olga.get(f"/api/cases/{CASE}").get_json()["history"]
    assert [(h["status"], h["by"]) for h in history] == [
        ("pending", "PC 1234 Smith"), ("open", "photo accepted"), ("closed", "olga")]
    assert history[2]["at"] == told_desk["at"]
    assert cases.get(CASE)["status"] == "closed"
