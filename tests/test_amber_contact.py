"""The case's own contact is told, and the record says who was told (issue 20 §3, §7), and
every amber SMS is one segment (issue 24 kind 7, ../shared/cases/sms-gsm-encoding).

amber_alert runs against a moto server; the case contact's SMS (SNS publish to a phone
number) and email (SES) reach the local stack's alert outbox through the same tap the stack
uses, with a real SMTP sink behind it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oneeye import sms
from oneeye.cloud.dal import store
from oneeye.cloud.dal.state import Cooldowns
from oneeye.cloud.functions import amber_alert as amber
from oneeye.events import DeskEvent, MatchEvent
from oneeye.local import alert_outbox
from oneeye.local.moto_server import tap_direct_messages, untap_direct_messages
from oneeye.types import utc_now
from tests.cloud_support import observe, sighting
from tests.net_support import free_port
from tests.wait import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("mall_devices")]

PHONE, EMAIL = "+442079460958", "duty@agency.example"


@pytest.fixture
def outbox(cloud_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """The local alert outbox, fed by moto's direct SMS/SES as in ``oneeye up``."""
    port = free_port()
    sink = alert_outbox.SmtpSink("127.0.0.1", port, tmp_path / "mail").start()
    box = alert_outbox.AlertOutbox(tmp_path / "outbox.jsonl",
                                   topic_arn=cloud_env["ALERTS_TOPIC_ARN"],
                                   smtp_host="127.0.0.1", smtp_port=port)

    def direct(kind: str, to: str, subject: str | None, body: str, message_id: str,
               event_id: str | None) -> None:
        box.handle_direct(kind, to, subject, body, message_id=message_id, event_id=event_id)

    tap_direct_messages(direct)
    yield box.path
    untap_direct_messages(direct)
    sink.stop()


def open_case(cloud_env: dict[str, str], **fields: Any) -> dict[str, Any]:
    return store.Cases(cloud_env["CASES_TABLE"]).upsert("MP-2026-0042", {
        "name": "Jane Doe", "agency": "Met Police", "contact": f"{PHONE}, {EMAIL}",
        "status": "open", **fields})


def told_of(cloud_env: dict[str, str]) -> list[dict[str, Any]]:
    case = store.Cases(cloud_env["CASES_TABLE"]).get("MP-2026-0042")
    assert case is not None
    return list(case.get("told") or [])


def test_the_contact_typed_at_upload_gets_the_sms_and_the_email_in_the_alert_outbox(
        cloud_env: dict[str, str], outbox: Path) -> None:
    open_case(cloud_env)
    event = sighting()
    assert amber.amber_alert(event, amber.amber_from_env())["status"] == "alerted"
    lines = wait_until(lambda: [e for e in alert_outbox.read(outbox) if e.get("direct")]
                       if len(alert_outbox.read(outbox)) >= 2 else None, 10,
                       "the contact's SMS and email in the alert outbox")
    by_kind = {e["kind"]: e for e in lines}
    assert by_kind["sms"]["to"] == PHONE and by_kind["sms"]["event_id"] == event["event_id"]
    assert by_kind["sms"]["body"].startswith("ALERT MP-2026-0042: Jane Doe seen mall-3/")
    assert by_kind["email"]["to"] == EMAIL
    assert "Missing person sighted: Jane Doe" in by_kind["email"]["body"]
    assert "Do not approach; contact the agency." in by_kind["email"]["body"]
    assert list((outbox.parent / "mail").glob("*.eml")), "the email went through SMTP"


def test_who_was_told_is_recorded_on_the_case_and_the_banner_for_every_sighting(
        cloud_env: dict[str, str], outbox: Path) -> None:
    """Sent on the first sighting; the second, at the same site within the cooldown, records
    ``cooldown`` for every recipient and messages nobody."""
    open_case(cloud_env)
    deskq = observe(cloud_env["DESK_TOPIC_ARN"])
    deps = amber.amber_from_env()
    first, second = sighting(), sighting(camera_id="food-court")
    amber.amber_alert(first, deps)
    amber.amber_alert(second, deps)
    told = told_of(cloud_env)
    assert [(t["event_id"] == first["event_id"], t["channel"], t["to"], t["outcome"])
            for t in told] == [
        (True, "subscribers", None, "sent"), (True, "sms", PHONE, "sent"),
        (True, "email", EMAIL, "sent"),
        (False, "subscribers", None, "cooldown"), (False, "sms", PHONE, "cooldown"),
        (False, "email", EMAIL, "cooldown")]
    assert all(t["at"].endswith("Z") and t["site_id"] == "mall-3" for t in told)
    assert told[1]["message_id"] and told[4]["message_id"] is None
    banners = [DeskEvent.model_validate(m).case or {} for m in deskq.messages()]
    assert banners[0]["notified"] is True and banners[1]["notified"] is False
    assert banners[0]["told"] == told[:3] and banners[1]["told"] == told[3:]
    assert f"SMS to {PHONE} sent" in banners[0]["told_text"]
    assert f"Email to {EMAIL} sent" in banners[0]["told_text"]
    assert "already alerted within the cooldown" in banners[1]["told_text"]
    sent = [e for e in alert_outbox.read(outbox) if e.get("direct")]
    assert len(sent) == 2, "the cooldown sighting messaged nobody"


def test_an_invalid_stored_contact_is_recorded_invalid_and_the_subscribers_still_alerted(
        cloud_env: dict[str, str], outbox: Path) -> None:
    """A case from before upload validation, contact "101": nobody can be texted, and the
    banner says why instead of claiming the agency was alerted."""
    open_case(cloud_env, contact="101")
    deskq = observe(cloud_env["DESK_TOPIC_ARN"])
    assert amber.amber_alert(sighting(), amber.amber_from_env())["status"] == "alerted"
    told = told_of(cloud_env)
    assert [(t["channel"], t["outcome"]) for t in told] == [("subscribers", "sent"),
                                                            ("sms", "invalid")]
    assert "start a phone number with +" in told[1]["detail"]
    banner = DeskEvent.model_validate(deskq.messages()[0]).case or {}
    assert "not sent (invalid contact)" in banner["told_text"]
    assert not [e for e in alert_outbox.read(outbox) if e.get("direct")]


def test_a_refused_email_is_recorded_as_delivery_failed_and_the_sms_still_goes(
        cloud_env: dict[str, str], outbox: Path) -> None:
    """SES refuses a sender that is not a verified identity (moto, as AWS); no sender at all
    is a failure too. Neither stops the SMS or the subscribers' alert."""
    open_case(cloud_env)
    deps = amber.amber_from_env()
    for n, (email_from, why) in enumerate((("nobody@unverified.example", "MessageRejected"),
                                           (None, "no email sender configured"))):
        # each try a cooldown later, so both are alerts that email and text
        later = Cooldowns(deps.cooldowns.table,
                          clock=lambda n=n: time.time() + n * (deps.cooldown_s + 1))
        assert amber.amber_alert(sighting(), replace(deps, email_from=email_from,
                                                     cooldowns=later))["status"] == "alerted"
        email = told_of(cloud_env)[-1]
        assert (email["channel"], email["outcome"]) == ("email", "failed")
        assert why in email["detail"]
        assert told_of(cloud_env)[-2]["outcome"] == "sent"      # the SMS


def test_the_recipient_is_masked_in_logs(cloud_env: dict[str, str], outbox: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    open_case(cloud_env)
    # every logger, ours and the libraries' (the SMTP sink's aiosmtpd names recipients)
    with caplog.at_level(logging.INFO):
        amber.amber_alert(sighting(), amber.amber_from_env())
        wait_until(lambda: "SMTP sink: mail to" in caplog.text, 10, "the mail in the sink")
    text = caplog.text
    assert "sms sent to +44*******958" in text and "d***@agency.example" in text
    assert PHONE not in text and EMAIL not in text


def test_the_told_list_keeps_the_newest_entries(cloud_env: dict[str, str]) -> None:
    open_case(cloud_env)
    cases = store.Cases(cloud_env["CASES_TABLE"])
    for i in range(5):
        cases.append_told("MP-2026-0042", [{"n": i, "to": None}], keep=3)
    assert [t["n"] for t in told_of(cloud_env)] == [2, 3, 4]


# ------------------------------------------------------------------ readable for the agency


def test_times_are_in_the_agencys_zone_with_utc_beside_and_strength_in_words(
        cloud_env: dict[str, str], outbox: Path) -> None:
    open_case(cloud_env, time_zone="Europe/Paris")
    deskq = observe(cloud_env["DESK_TOPIC_ARN"])
    # a sighting from a device whose clock is right (sent_at is now), delivered late: its
    # observed_at stands (a fixed instant, so the zone's winter abbreviation is known)
    amber.amber_alert(sighting(observed_at="2026-12-06T20:45:10Z", sent_at=utc_now(),
                               margin=0.2), amber.amber_from_env())
    email = next(e for e in wait_until(lambda: alert_outbox.read(outbox), 10, "the outbox")
                 if e["kind"] == "email")
    assert "Time:    2026-12-06 21:45 CET (20:45 UTC)" in email["body"]
    assert "Match:   strong match" in email["body"]
    assert "margin 1.00" not in email["body"]
    text = next(e for e in alert_outbox.read(outbox) if e["kind"] == "sms")["body"]
    assert "21:45 CET (20:45Z), strong match. Do not approach; contact the agency." in text
    banner = DeskEvent.model_validate(deskq.messages()[0]).case or {}
    assert banner["seen_local"] == "2026-12-06 21:45 CET (20:45 UTC)"
    assert banner["time_zone"] == "Europe/Paris"
    assert (banner["strength"], banner["strength_text"]) == ("strong", "strong match")
    assert banner["safety"] == "Do not approach; contact the agency."


def test_an_unknown_zone_on_the_case_falls_back_to_utc(cloud_env: dict[str, str]) -> None:
    case = open_case(cloud_env, time_zone="Mars/Olympus_Mons")
    texts = amber.alert_texts(MatchEvent.model_validate(sighting(
        observed_at="2026-12-06T20:45:10Z")), case, None)
    assert "Time:    2026-12-06 20:45 UTC\n" in texts["email"]


# ------------------------------------------------------------------ one SMS segment


CASE_NAMES = {  # ../shared/cases/sms-gsm-encoding: each was 2 segments
    "MP-2026-0001": ("Łucja Wójcik", "Lucja Wojcik"),
    "MP-2026-0002": ("Siobhan O’Brien", "Siobhan O'Brien"),
    "MP-2026-0003": ("Tom Baker", "Tom Baker"),
    "MP-2026-0004": ("Zoë Müller", "Zoe Müller"),     # ü is GSM, ë is not
    "MP-2026-0005": ("María Fernanda de los Ángeles Rodríguez-Castañeda y Gómez de la Serna",
                     "Maria Fernanda de los Angeles Rodriguez-Castañeda y Gomez de la Serna"),
}


@pytest.mark.parametrize("case_id", sorted(CASE_NAMES))
@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_the_case_names_make_one_gsm7_segment(case_id: str, zone: str | None) -> None:
    typed, sent = CASE_NAMES[case_id]
    ev = MatchEvent.model_validate(sighting(person_id=case_id, site_id="site-1",
                                            camera_id="lobby"))
    text = amber.alert_texts(ev, {"name": typed, "time_zone": zone}, None)["sms"]
    seg = sms.segments(text)
    assert (seg.encoding, seg.count) == ("GSM-7", 1), (text, seg)
    assert f"ALERT {case_id}: " in text and "site-1/lobby" in text
    assert sent in text or sent[:20] in text


@pytest.mark.parametrize(("name", "keeps"), [
    ("李小龍", "李小龍"),                         # CJK: no transliteration, one UCS-2 segment
    ("Юлия Петрова-Соколова", "Юлия"),           # Cyrillic keeps its letters
    ("Ἀλέξανδρος Παπαδόπουλος", "Ἀλέξ"),          # Greek small letters are not GSM
])
def test_a_name_that_cannot_be_transliterated_keeps_its_letters_in_one_ucs2_segment(
        name: str, keeps: str) -> None:
    ev = MatchEvent.model_validate(sighting(person_id="MP-2026-0006", site_id="site-1",
                                            camera_id="lobby"))
    text = amber.alert_texts(ev, {"name": name, "time_zone": "Europe/Paris"}, None)["sms"]
    seg = sms.segments(text)
    assert (seg.encoding, seg.count) == ("UCS-2", 1) and seg.units <= 70, (text, seg)
    assert keeps in text and text.startswith("ALERT MP-2026-0006: ")


def test_a_long_name_and_long_ids_are_shortened_to_one_segment_with_three_dots() -> None:
    long = "Maria-Fernanda Gutiérrez de la Concepción y Villaseñor-Montenegro " * 3
    ev = MatchEvent.model_validate(sighting(site_id="site-" + "x" * 40,
                                            camera_id="camera-" + "y" * 40))
    text = amber.alert_texts(ev, {"name": long}, None)["sms"]
    seg = sms.segments(text)
    assert (seg.encoding, seg.count) == ("GSM-7", 1)
    assert "..." in text and "…" not in text and text.startswith("ALERT MP-2026-0042: Maria")


@pytest.mark.parametrize(("text", "encoding", "units", "count"), [
    ("Łucja Wójcik", "UCS-2", 12, 1),            # as typed: UCS-2
    ("Lucja Wojcik", "GSM-7", 12, 1),
    ("a" * 160, "GSM-7", 160, 1), ("a" * 161, "GSM-7", 161, 2),   # 153 per part after one
    ("€" * 80, "GSM-7", 160, 1), ("€" * 81, "GSM-7", 162, 2),     # extension chars count 2
    ("ж" * 70, "UCS-2", 70, 1), ("ж" * 71, "UCS-2", 71, 2),
    ("😀" * 35, "UCS-2", 70, 1),                 # outside the BMP: two UTF-16 units each
])
def test_segments_are_counted_as_carriers_bill_them(text: str, encoding: str, units: int,
                                                    count: int) -> None:
    assert sms.segments(text) == sms.Segments(encoding, units, count)  # type: ignore[arg-type]


@pytest.mark.parametrize(("typed", "gsm"), [
    ("O’Brien", "O'Brien"), ("“Kit”", '"Kit"'), ("Smith…", "Smith..."),
    ("Anne–Marie", "Anne-Marie"), ("Łódź", "Lodz"), ("Françoise", "Francoise"),
    ("Ærø", "Ærø"), ("Øre ß É", "Øre ß É"), ("Chloé", "Chloé"),   # already GSM: unchanged
    ("Юлия", None), ("李", None),                                # no GSM form
])
def test_look_alikes_and_missing_diacritics_are_transliterated(typed: str,
                                                                gsm: str | None) -> None:
    assert sms.to_gsm(typed) == gsm
