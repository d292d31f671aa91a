"""The desk as a specification: one banner per case, visits, verdicts in the audit, review
pages (paging, CSV, the viewer's time zone), camera outages, and who may open what."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from dashboard.services import services_of
from oneeye.events import CameraHealth, DeskEvent, HealthEvent, utc_now
from oneeye.types import format_time
from tests import dashboard_helpers as dh
from tests.wait import ManualClock

Signer, desk_event = dh.Signer, dh.desk_event
client_of, push = dh.client_of, dh.push


@pytest.fixture
def app_options() -> dict[str, Any]:
    return {"history_limit": 5, "visit_window_s": 600}


@pytest.fixture
def desk_users() -> dict[str, list[str]]:
    return {"alice": ["branch-1"], "bob": ["branch-2"]}


@pytest.fixture(autouse=True)
def staff(app: Flask) -> None:
    """Beside the tellers: ada, a branch admin of branch-1, and olga, a County Police officer."""
    from dashboard.auth import hash_password

    digest = hash_password(dh.PASSWORD)
    services_of(app).store.users.create("ada", digest, ["branch-1"], role="branch_admin")
    services_of(app).store.users.create("olga", digest, [], role="agency_officer",
                                            agency="County Police")


def sighting(camera: str, *, at: str | None = None, case: str = "MP-2026-0042",
             site: str = "branch-1", notified: bool = False) -> DeskEvent:
    event = desk_event(site, "missing_person_sighted", person_id=case, name="Lin Miranda",
                       device_id=camera)
    assert event.match is not None and event.case is not None
    return event.model_copy(update={
        "observed_at": at or event.observed_at, "case": {**event.case, "notified": notified},
        "match": event.match.model_copy(update={"observed_at": at or event.observed_at})})


def arrival(person: str, at: str, camera: str = "cam-1") -> DeskEvent:
    event = desk_event(person_id=person, name=f"Customer {person}", device_id=camera)
    assert event.match is not None
    return event.model_copy(update={"observed_at": at, "match": event.match.model_copy(
        update={"observed_at": at})})


def test_three_sightings_of_one_case_are_one_banner_and_one_acknowledge_clears_it(
        app: Flask, signer: Signer) -> None:
    for camera, notified in (("cam-1", True), ("cam-3", False), ("cam-1", False)):
        push(app, signer, sighting(camera, notified=notified))
    push(app, signer, sighting("cam-9", site="branch-2"))          # another site's, not ours
    alice, token = client_of(app, "alice")
    [group] = alice.get("/api/alerts").get_json()["alerts"]
    assert group["kind"] == "missing_person_sighted" and group["subject"] == "MP-2026-0042"
    assert group["count"] == 3 and group["cameras"] == ["cam-1", "cam-3"]
    assert group["notified"] is True and group["reraised"] is None
    assert group["latest"]["strength"] == "strong"                 # distance 0.38, margin 0.2

    ack = alice.post("/api/alerts/ack", json={"kind": group["kind"], "subject": "MP-2026-0042",
                                              "upto_seq": group["upto_seq"]},
                     headers={"X-CSRF-Token": token})
    assert ack.status_code == 200 and len(ack.get_json()["event_ids"]) == 3
    assert alice.get("/api/alerts").get_json()["alerts"] == []
    again = alice.post("/api/alerts/ack", json={"kind": group["kind"], "subject": "MP-2026-0042",
                                                "upto_seq": group["upto_seq"]},
                       headers={"X-CSRF-Token": token})
    assert again.status_code == 404

    push(app, signer, sighting("cam-3"))                           # seen after the ack
    [raised] = alice.get("/api/alerts").get_json()["alerts"]
    assert raised["count"] == 1 and raised["reraised"]["by"] == "alice"
    audit = services_of(app).store.audit.rows(user="alice")
    assert audit[0]["action"] == "acknowledged" and audit[0]["detail"]["events"] == 3


def test_acknowledge_covers_only_what_the_person_saw(app: Flask, signer: Signer) -> None:
    push(app, signer, sighting("cam-1"))
    alice, token = client_of(app, "alice")
    [seen] = alice.get("/api/alerts").get_json()["alerts"]
    push(app, signer, sighting("cam-2"))                           # arrives while clicking
    alice.post("/api/alerts/ack", json={"kind": seen["kind"], "subject": seen["subject"],
                                        "upto_seq": seen["upto_seq"]},
               headers={"X-CSRF-Token": token})
    [left] = alice.get("/api/alerts").get_json()["alerts"]
    assert left["count"] == 1 and left["cameras"] == ["cam-2"] and left["reraised"]


def test_acknowledge_needs_a_group_of_your_sites_and_csrf(app: Flask, signer: Signer) -> None:
    push(app, signer, sighting("cam-9", site="branch-2"))
    alice, token = client_of(app, "alice")
    body = {"kind": "missing_person_sighted", "subject": "MP-2026-0042", "upto_seq": 10**6}
    assert alice.post("/api/alerts/ack", json=body).status_code == 400        # no CSRF
    assert alice.post("/api/alerts/ack", json=body,
                      headers={"X-CSRF-Token": token}).status_code == 404
    assert alice.post("/api/alerts/ack", json={**body, "kind": "customer_arrived"},
                      headers={"X-CSRF-Token": token}).status_code == 400


def test_arrivals_of_one_customer_within_the_visit_window_are_one_card(
        app: Flask, signer: Signer) -> None:
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def at(minutes: float) -> str:
        return format_time(base + timedelta(minutes=minutes))

    push(app, signer, arrival("C-1", at(0)))
    push(app, signer, arrival("C-1", at(4), camera="cam-2"))
    push(app, signer, arrival("C-2", at(5)))
    push(app, signer, arrival("C-1", at(8)))                       # 4 min after the last
    push(app, signer, arrival("C-1", at(30)))                      # window 10 min: new visit
    alice, _ = client_of(app, "alice")
    # all=1: these visits are months old, long past card_ttl_s (off the desk, in History)
    visits = alice.get("/api/arrivals?all=1").get_json()["visits"]
    # stable order: by when each visit began, newest first (a repeat never moves a card)
    assert [(v["person_id"], v["count"]) for v in visits] == [("C-1", 1), ("C-2", 1), ("C-1", 3)]
    assert visits[2]["cameras"] == ["cam-1", "cam-2"]
    assert visits[2]["first_at"] == at(0) and visits[2]["last_at"] == at(8)
    assert alice.get("/api/arrivals").get_json()["visits"] == []


def test_confirm_and_reject_are_recorded_with_who_and_when_and_counted(
        app: Flask, signer: Signer) -> None:
    first, second = sighting("cam-1"), arrival("C-7", utc_now())
    push(app, signer, first)
    push(app, signer, second)
    alice, token = client_of(app, "alice")
    ok = alice.post(f"/api/events/{first.event_id}/feedback", json={"verdict": "confirmed"},
                    headers={"X-CSRF-Token": token})
    no = alice.post(f"/api/events/{second.event_id}/feedback", json={"verdict": "rejected"},
                    headers={"X-CSRF-Token": token})
    assert ok.status_code == no.status_code == 200 and no.get_json()["by"] == "alice"
    bad = alice.post(f"/api/events/{first.event_id}/feedback", json={"verdict": "maybe"},
                     headers={"X-CSRF-Token": token})
    assert bad.status_code == 400
    bob, bob_token = client_of(app, "bob")
    assert bob.post(f"/api/events/{first.event_id}/feedback", json={"verdict": "rejected"},
                    headers={"X-CSRF-Token": bob_token}).status_code == 404
    [rec] = alice.get(f"/api/events?person_id={second.match.person_id}").get_json()["events"]
    assert rec["feedback"]["verdict"] == "rejected" and rec["feedback"]["by"] == "alice"
    audit = services_of(app).store.audit.rows(user="alice")
    assert [(a["action"], a["target"]) for a in audit] == [
        ("rejected", second.event_id), ("confirmed", first.event_id)]
    assert audit[0]["detail"]["camera_id"] == "cam-1" and audit[0]["at"].endswith("Z")
    admin, _ = client_of(app, "ada")
    page = admin.get("/manage/audit").get_data(as_text=True)
    assert "False matches to tune on" in page and second.event_id in page
    # details read as "key value" pairs, never as raw JSON
    assert '<span class="k">camera id</span> cam-1' in page
    assert "&#34;camera_id&#34;" not in page and '{"camera_id"' not in page
    assert services_of(app).store.verdicts.rejection_counts(["branch-1"])[0] == {
        "site_id": "branch-1", "camera_id": "cam-1", "watchlist": "customers",
        "confirmed": 0, "rejected": 1}


def test_history_shows_sightings_in_the_viewers_zone_with_iso_day_filters(
        app: Flask, signer: Signer) -> None:
    # 19:00Z on Jan 30 is 00:30 on Jan 31 in Kolkata (+05:30)
    push(app, signer, arrival("C-5", "2026-01-30T19:00:00.000Z"))
    push(app, signer, arrival("C-6", "2026-01-30T18:00:00.000Z"))  # 23:30 on Jan 30 there
    alice, _ = client_of(app, "alice")
    page = alice.get("/history?tz=Asia/Kolkata&since=2026-01-31").get_data(as_text=True)
    assert "2026-01-31 00:30:00 IST" in page and "1 result " in page
    assert "C-6" not in page
    alice.set_cookie("tz", "America%2FNew_York")   # what common.js sets: encodeURIComponent
    page = alice.get("/history?person=C-5").get_data(as_text=True)
    assert "2026-01-30 14:00:00 EST" in page and "times in America/New_York" in page
    api = alice.get("/api/events?person=C-5").get_json()["events"]
    assert api[0]["observed_at"] == "2026-01-30T19:00:00.000Z"     # the API stays UTC
    assert alice.get("/history?since=31/01/2026").status_code == 400


@pytest.mark.parametrize("query", [
    "/history?since=2026-02-30", "/history?since=2026-13-45", "/history?until=9999-12-31",
    "/history.csv?since=2026-02-30", "/history/cameras?until=2026-00-10",
    "/history?tz=Asia/Kolkata&since=0001-01-01"])
def test_impossible_day_filters_are_a_400_naming_the_field(app: Flask, query: str) -> None:
    alice, _ = client_of(app, "alice")
    resp = alice.get(query)
    assert resp.status_code == 400
    field = "until" if "until=" in query else "since"
    assert f"{field} must be a real date YYYY-MM-DD" in resp.get_data(as_text=True)


def test_history_pages_counts_and_keeps_device_events_apart(app: Flask, signer: Signer) -> None:
    for i in range(7):
        push(app, signer, arrival(f"C-{i}", utc_now()))
    push(app, signer, desk_event(kind="device_offline", device_id="cam-2"))
    alice, _ = client_of(app, "alice")
    first = alice.get("/history?limit=5").get_data(as_text=True)
    assert "7 results · showing 1–5" in first and 'rel="next"' in first
    assert "cam-2" not in first
    second = alice.get("/history?limit=5&offset=5").get_data(as_text=True)
    assert "showing 6–7" in second and 'rel="prev"' in second
    cameras = alice.get("/history/cameras").get_data(as_text=True)
    assert "1 result " in cameras and "device offline" in cameras


def test_csv_export_has_utc_and_local_times_and_defuses_formulas(
        app: Flask, signer: Signer) -> None:
    evil = arrival("C-9", "2026-01-30T19:00:00.000Z")
    evil = evil.model_copy(update={"customer": {**(evil.customer or {}),
                                                "name": "=HYPERLINK(\"http://x\")"}})
    push(app, signer, evil)
    push(app, signer, sighting("cam-1", at="2026-01-30T20:00:00.000Z"))
    alice, _ = client_of(app, "alice")
    resp = alice.get("/history.csv?tz=Europe/Paris")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["kind"] for r in rows] == ["missing_person_sighted", "customer_arrived"]
    assert rows[1]["observed_at_utc"] == "2026-01-30T19:00:00.000Z"
    assert rows[1]["observed_at_local (Europe/Paris)"] == "2026-01-30 20:00:00 CET"
    assert rows[1]["name"].startswith("'=")
    person = alice.get("/history.csv?person_id=MP-2026-0042")
    assert len(list(csv.DictReader(io.StringIO(person.get_data(as_text=True))))) == 1


def test_person_page_lists_every_sighting(app: Flask, signer: Signer) -> None:
    for camera in ("cam-1", "cam-2"):
        push(app, signer, sighting(camera))
    alice, _ = client_of(app, "alice")
    page = alice.get("/people/MP-2026-0042").get_data(as_text=True)
    assert "Lin Miranda" in page and "2 results" in page
    assert alice.get("/people/bad%20id").status_code == 404


def test_catch_up_pages_through_more_than_one_page(app: Flask, signer: Signer) -> None:
    push(app, signer, arrival("C-0", utc_now()))
    alice, _ = client_of(app, "alice")
    [last] = alice.get("/api/events?limit=1").get_json()["events"]
    missed = [arrival(f"C-{i}", utc_now()) for i in range(1, 12)] + [sighting("cam-1")]
    for event in missed:
        push(app, signer, event)
    got: list[str] = []
    after, pages = last["event_id"], 0
    while True:                                     # what desk.js does after a reconnect
        page = alice.get(f"/api/events?after={after}").get_json()
        got += [r["event_id"] for r in page["events"]]
        pages += 1
        if len(page["events"]) < page["limit"]:
            break
        after = page["events"][-1]["event_id"]
    assert pages == 3 and got == [e.event_id for e in missed]


def test_the_cloud_s_offline_and_online_transitions_are_applied_once(
        app: Flask, signer: Signer, clock: ManualClock) -> None:
    health = HealthEvent(device_id="cam-7", site_id="branch-1", camera_id="cam-7",
                         sent_at=utc_now(), uptime_s=5, fps=12.0)
    push(app, signer, desk_event(kind="device_status", device_id="cam-7", health=health))
    alice, _ = client_of(app, "alice")
    clock.advance(3600)                               # silence alone changes nothing here
    [dev] = alice.get("/api/devices").get_json()["devices"]
    assert dev["online"] is True and dev["fps"] == 12.0
    offline = desk_event(kind="device_offline", device_id="cam-7",
                         message="no health report for over 90 s")
    push(app, signer, offline)
    push(app, signer, offline)                        # SNS redelivers: one event, one banner
    [dev] = alice.get("/api/devices").get_json()["devices"]
    assert dev["online"] is False and dev["fps"] is None          # no stale fps
    [outage] = alice.get("/api/alerts").get_json()["alerts"]
    assert outage["kind"] == "device_offline" and outage["subject"] == "cam-7"
    push(app, signer, desk_event(kind="device_online", device_id="cam-7"))
    kinds = [r["kind"] for r in alice.get("/api/events?kind=device_offline,device_online")
             .get_json()["events"]]
    assert kinds == ["device_online", "device_offline"]
    assert alice.get("/api/alerts").get_json()["alerts"] == []    # closed by the return
    assert alice.get("/api/events?kind=device_status").get_json()["events"] == []


def test_a_transition_that_sns_delivers_late_changes_nothing(app: Flask, signer: Signer) -> None:
    """SNS keeps no order: the cloud's offline (10:00) retried after its online (10:05) must
    not show a working camera as offline, nor raise a banner; a newer offline (10:10) still
    does, and the online of 10:05 redelivered after it does not close that banner."""
    def at(minute: int, kind: str) -> DeskEvent:
        when = format_time(datetime(2026, 12, 7, 10, minute, tzinfo=UTC))
        return desk_event(kind=kind, device_id="cam-7").model_copy(
            update={"observed_at": when, "event_id": f"{kind.replace('_', '-')}-{minute}"})

    alice, _ = client_of(app, "alice")
    push(app, signer, at(5, "device_online"))
    push(app, signer, at(0, "device_offline"))                 # late
    [dev] = alice.get("/api/devices").get_json()["devices"]
    assert dev["online"] is True
    assert alice.get("/api/alerts").get_json()["alerts"] == []
    kinds = [r["event_id"] for r in alice.get("/api/events?kind=device_offline,device_online")
             .get_json()["events"]]
    assert sorted(kinds) == ["device-offline-0", "device-online-5"]   # both in the history
    push(app, signer, at(10, "device_offline"))                # newer: applied
    [dev] = alice.get("/api/devices").get_json()["devices"]
    assert dev["online"] is False
    [outage] = alice.get("/api/alerts").get_json()["alerts"]
    assert outage["event_ids"] == ["device-offline-10"]
    late_online = at(5, "device_online").model_copy(update={"event_id": "device-online-5b"})
    push(app, signer, late_online)                             # older than the offline
    [dev] = alice.get("/api/devices").get_json()["devices"]
    assert dev["online"] is False
    assert [a["event_ids"] for a in alice.get("/api/alerts").get_json()["alerts"]] == [
        ["device-offline-10"]]


def test_each_camera_of_a_device_is_listed_with_its_own_state(app: Flask, signer: Signer,
                                                              clock: ManualClock) -> None:
    health = HealthEvent(
        device_id="edge-7", site_id="branch-1", camera_id="lobby", sent_at=utc_now(),
        uptime_s=5, fps=0.0, camera_state="reconnecting",
        cameras={"door": CameraHealth(state="ok", fps=14.9, frame_age_ms=80.0),
                 "lobby": CameraHealth(state="reconnecting", frame_age_ms=9000.0,
                                       dropped_frames=3)})
    push(app, signer, desk_event(kind="device_status", device_id="edge-7", health=health))
    alice, _ = client_of(app, "alice")
    [dev] = alice.get("/api/devices").get_json()["devices"]
    assert dev["cameras"] == [
        {"camera_id": "door", "state": "ok", "fps": 14.9, "frame_age_ms": 80.0,
         "dropped_frames": 0},
        {"camera_id": "lobby", "state": "reconnecting", "fps": None, "frame_age_ms": 9000.0,
         "dropped_frames": 3}]
    # the cloud marks the device offline: no frozen figures
    push(app, signer, desk_event(kind="device_offline", device_id="edge-7"))
    [dev] = alice.get("/api/devices").get_json()["devices"]
    assert [(c["state"], c["fps"], c["frame_age_ms"]) for c in dev["cameras"]] == [
        ("ok", None, None), ("reconnecting", None, None)]


def test_a_teller_cannot_reach_management_and_an_officer_has_no_desk(app: Flask) -> None:
    alice, _ = client_of(app, "alice")
    for path in ("/manage/customers", "/manage/users", "/manage/sites", "/manage/audit",
                 "/cases", "/cases/MP-2026-0042"):
        assert alice.get(path).status_code == 403, path
    assert "Customers" not in alice.get("/").get_data(as_text=True)
    olga, _ = client_of(app, "olga")
    assert olga.get("/").headers["Location"] == "/cases"      # their home, not a 403
    assert olga.get("/api/events").status_code == 403
    assert olga.get("/manage/users").status_code == 403
    admin, token = client_of(app, "ada")
    assert admin.get("/manage/users").status_code == 200
    assert admin.get("/cases").status_code == 403
    saved = admin.post("/manage/users", data={"name": "tom", "password": "long enough pw",
                                              "role": "teller", "sites": "branch-1",
                                              "csrf_token": token})
    assert saved.status_code == 302
    assert services_of(app).store.users.get("tom")["role"] == "teller"


@pytest.mark.parametrize(("field", "value", "said"), [
    ("sites", "branch-1, Zürich HB", "site 'Zürich HB' is not a valid id: 'ü', space are not"),
    ("sites", "Filiale Süd", "site 'Filiale Süd' is not a valid id"),
    ("name", "Jörg", "user name 'Jörg' is not a valid id: 'ö' is not allowed"),
    ("name", "", "user name '' is not a valid id: it is empty"),
])
def test_an_odd_site_or_user_name_is_refused_naming_it_and_the_rule(
        app: Flask, field: str, value: str, said: str) -> None:
    admin, token = client_of(app, "ada")
    form = {"name": "tom", "password": "long enough pw", "role": "teller",
            "sites": "branch-1", "csrf_token": token, field: value}
    resp = admin.post("/manage/users", data=form, follow_redirects=True)
    page = html.unescape(resp.get_data(as_text=True))
    assert said in page and "1–128 ASCII letters" in page
    assert services_of(app).store.users.get(form["name"] or "tom") is None


def test_email_says_the_strength_in_words_and_links_the_snapshot_on_its_own_line() -> None:
    from oneeye.cloud.functions.amber_alert import alert_texts

    event = sighting("cam-1")
    assert event.match is not None
    url = "https://bucket.s3.amazonaws.com/snapshots/x.jpg?X-Amz-Signature=abc"
    email = alert_texts(event.match, {"name": "Lin"}, url)["structure"]["email"]
    assert "Match:   strong match — the camera's face and the case photo look very alike " \
        "(distance 0.38, margin 0.20)" in email
    assert f"\n<{url}>\n" in email
    weak = event.match.model_copy(update={"distance": 0.5, "margin": 0.09})
    assert "Match:   possible match — " in alert_texts(weak, {}, None)["structure"]["email"]


def test_an_agency_officer_sees_and_closes_only_their_agencys_cases(
        tmp_path: Path, signer: Signer, cloud_env: dict[str, str]) -> None:
    from dashboard.auth import hash_password
    from oneeye.cloud.dal import store as cloud_store

    cases = cloud_store.Cases(cloud_env["CASES_TABLE"])
    cases.upsert("MP-2026-0101", {"status": "open", "agency": "County Police", "name": "Ann"})
    cases.upsert("MP-2026-0102", {"status": "open", "agency": "Other Agency", "name": "Ben"})
    (tmp_path / "cloud").mkdir()     # beside the module's own app, which has no cloud
    app = dh.app_for(tmp_path / "cloud", signer, cloud={
        "bucket": cloud_env["ONEEYE_BUCKET"], "cases_table": cloud_env["CASES_TABLE"],
        "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"]})
    services_of(app).store.users.create("olga", hash_password(dh.PASSWORD), [],
                                            role="agency_officer", agency="County Police")
    olga, token = client_of(app, "olga")
    assert olga.get("/manage/cases").headers["Location"] == "/cases"   # the old address
    page = olga.get("/cases").get_data(as_text=True)
    assert "MP-2026-0101" in page and "Ann" in page and "MP-2026-0102" not in page
    other = olga.post("/cases/MP-2026-0102/close", data={"csrf_token": token})
    assert other.status_code == 404                       # another agency's: as if absent
    assert cases.get("MP-2026-0102")["status"] == "open"
    closed = olga.post("/cases/MP-2026-0101/close", data={"csrf_token": token})
    assert closed.status_code == 302
    assert cases.get("MP-2026-0101")["status"] == "closed"
    assert cases.get("MP-2026-0101")["closed_by"] == "County Police/olga"
    [row] = services_of(app).store.audit.rows(user="olga")
    assert (row["action"], row["target"]) == ("case_closed", "MP-2026-0101")


def test_a_branch_admin_sends_a_phone_sized_photo_and_gets_a_verdict_key(
        tmp_path: Path, signer: Signer, cloud_env: dict[str, str]) -> None:
    import numpy as np
    from PIL import Image

    from dashboard.auth import hash_password
    from oneeye.cloud.dal import store as cloud_store

    (tmp_path / "cloud").mkdir()
    app = dh.app_for(tmp_path / "cloud", signer, cloud={
        "bucket": cloud_env["ONEEYE_BUCKET"], "cases_table": cloud_env["CASES_TABLE"],
        "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"]})
    services_of(app).store.users.create("ada", hash_password(dh.PASSWORD), ["branch-1"],
                                            role="branch_admin")
    ada, token = client_of(app, "ada")
    noise = np.random.default_rng(1).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="JPEG", quality=95)
    assert buf.tell() > 1024 * 1024                     # over the app's 512 KB form limit
    sent = ada.post("/manage/customers/photos", headers={"X-CSRF-Token": token},
                    data={"customer_id": "C-1042", "photo": (io.BytesIO(buf.getvalue()),
                                                             "big.jpg")})
    assert sent.status_code == 202, sent.get_json()
    upload_id = sent.get_json()["upload_id"]
    bucket = cloud_store.Bucket(cloud_env["ONEEYE_BUCKET"])
    key = f"uploads/customers/C-1042/{upload_id.removeprefix('C-1042-')}.jpg"
    assert bucket.head(key) is not None                 # where the indexer enrols from
    assert ada.get(f"/manage/customers/photos/{upload_id}").get_json()["state"] == "pending"
    # a phone's WebP (any format the decoder reads) is kept as an upright JPEG
    webp = io.BytesIO()
    Image.fromarray(noise[:400, :300]).save(webp, format="WEBP")
    sent = ada.post("/manage/customers/photos", headers={"X-CSRF-Token": token},
                    data={"customer_id": "C-1042", "photo": (io.BytesIO(webp.getvalue()),
                                                             "phone.webp")})
    assert sent.status_code == 202, sent.get_json()
    stem = sent.get_json()["upload_id"].removeprefix("C-1042-")
    stored = bucket.get(f"uploads/customers/C-1042/{stem}.jpg")
    assert stored is not None and Image.open(io.BytesIO(stored.data)).size == (300, 400)
    # what is not a readable photo: a clear 400 naming why, and nothing stored
    for body, why in [(b"GIF89a...", r"corrupt|not an image"),
                      (b"plain text, not a picture", r"not an image"),
                      (b"\0\0\0\x18ftypheic\0\0\0\0", r"HEIC is not supported; export as JPEG")]:
        bad = ada.post("/manage/customers/photos", headers={"X-CSRF-Token": token},
                       data={"customer_id": "C-1042", "photo": (io.BytesIO(body), "x.gif")})
        assert bad.status_code == 400 and re.search(why, bad.get_json()["message"]), body
        assert "nothing was saved" in bad.get_json()["message"]
    assert len(bucket.keys("uploads/customers/C-1042/")) == 2
    added = services_of(app).store.audit.rows(user="ada")
    assert [(a["action"], a["target"]) for a in added] == [("customer_photo_added", "C-1042")] * 2


def test_who_was_told_is_shown_in_the_viewers_zone_like_every_other_desk_time() -> None:
    """amber_alert writes ``told_text`` in the agency's zone; a desk in another zone reads
    the same moments in its own (the banner's other times are the viewer's too). A sighting
    stored before ``told`` was kept still shows the text it came with."""
    from dashboard.alerts import group_alerts

    told = [{"channel": "sms", "to": "+442079460958", "outcome": "sent",
             "at": "2026-01-15T20:45:00.000Z"},
            {"channel": "email", "to": "duty@police.example", "outcome": "failed",
             "at": "2026-01-15T20:45:01.000Z"}]

    def record(seq: int, case: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "missing_person_sighted", "event_id": f"e{seq}", "seq": seq,
                "site_id": "branch-1", "observed_at": f"2026-01-15T20:4{seq}:00.000Z",
                "event": {"match": {"person_id": "case-1", "camera_id": "door"},
                          "case": case}}

    sent = record(4, {"told": told, "told_text": "SMS to +442079460958 sent 21:45 CET; "
                                                  "Email to duty@police.example delivery failed"})
    [group] = group_alerts([sent], time_zone="America/New_York")
    assert group["told_text"] == ("SMS to +442079460958 sent 15:45 EST; "
                                  "Email to duty@police.example delivery failed")
    [group] = group_alerts([sent], time_zone="Europe/Paris")
    assert group["told_text"].startswith("SMS to +442079460958 sent 21:45 CET")
    older = record(5, {"told_text": "Agency alerted 21:46 CET"})   # before `told` was kept
    [group] = group_alerts([older], time_zone="America/New_York")
    assert group["told_text"] == "Agency alerted 21:46 CET"
