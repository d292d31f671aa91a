"""amber_alert: a missing-watchlist match becomes an email/SMS alert and a desk banner.

Order of checks: the event must validate; its case must exist and be open
(closed or unknown → no alert, logged — the edge may still hold an old gallery
for a few seconds after a case closes); then the per-case-per-site cooldown.

One grouping policy for desk and email/SMS (README "What you will see"): at most one
*alert* (email/SMS) per case per site per ``ALERT_COOLDOWN_S``, taken as a
conditional write of ``cooldown:{case}:{site}`` in the state table
(:class:`~oneeye.cloud.dal.state.Cooldowns`) whose ``expires_at`` is the end of the
cooldown. Every sighting still goes to the desk (the
guard on site wants the latest camera and time) with ``case.notified`` saying whether
it sent the email/SMS; the dashboard groups a case's open sightings under one banner
(``dashboard.alerts``) that says whether the agency was told.

Who is told: the alerts topic's subscribers, and the case's own contact (typed at upload,
normalised there: :mod:`oneeye.contacts`) by SNS direct SMS and/or SES email, under the same
cooldown. Every sighting records, per recipient, the outcome (``sent`` / ``cooldown`` /
``invalid`` / ``failed``) in the case's ``told`` list (:meth:`store.Cases.append_told`) and
on the desk event (``case.told``, ``case.told_text``).

The SMS is one segment (:mod:`oneeye.sms`) and carries no snapshot link: a presigned S3
URL alone is ~400 characters, and a link shortener would be a new service
holding personal data. The email (and the ``default`` text) carry the link,
valid for ``SNAPSHOT_URL_TTL_S``.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass
from typing import Any

from oneeye import alerting, contacts, events, sms
from oneeye.cloud.common import DeviceMessageDeps, Result, clip, once_per_match, store_snapshot
from oneeye.cloud.dal import store
from oneeye.cloud.dal.state import Cooldowns, Idempotency
from oneeye.cloud.devices import registry
from oneeye.cloud.settings import AmberSettings
from oneeye.types import utc_now

log = logging.getLogger(__name__)

SUBJECT_MAX = 99
_CASE_FIELDS = ("name", "age", "description", "agency", "contact", "status", "time_zone")


@dataclass(frozen=True, kw_only=True)
class AmberDeps(DeviceMessageDeps):
    cases: store.Cases
    bucket: store.Bucket
    #: One email/SMS per case per site per ``cooldown_s`` (the state table's cooldowns).
    cooldowns: Cooldowns
    alerts_topic_arn: str
    #: At most one email/SMS per case per site in this many seconds.
    cooldown_s: int = 600
    snapshot_url_ttl_s: int = 86400
    #: The SES identity the case contact's email is sent from; None: email contacts are
    #: recorded ``failed`` ("no sender configured") and only their SMS goes out.
    email_from: str | None = None


def amber_alert(message: Any, deps: AmberDeps) -> Result:
    return once_per_match(message, deps, watchlist="missing", handler="amber_alert",
                          work=lambda match: _sighting(match, deps))


def _sighting(match: events.MatchEvent, deps: AmberDeps) -> Result:
    case = deps.cases.get(match.person_id)
    if case is None or case.get("status", "open") != "open":
        why = "unknown case" if case is None else f"case is {case.get('status')}"
        log.warning("amber_alert: no alert for %s at %s: %s", match.person_id, match.site_id, why)
        return {"status": "no_alert", "event_id": match.event_id, "reason": why}
    card = {"id": match.person_id, **{k: case[k] for k in _CASE_FIELDS if k in case}}
    if case.get("photo_key"):
        # the banner shows the case's accepted photo beside the camera crop
        card["photo_url"] = deps.bucket.presign_get(str(case["photo_key"]),
                                                    expires_s=deps.snapshot_url_ttl_s)
    snapshot_url = _store_snapshot(match, deps)
    alerted = deps.cooldowns.start(match.person_id, match.site_id, seconds=deps.cooldown_s)
    zone = case.get("time_zone") if isinstance(case.get("time_zone"), str) else None
    seen = alerting.seen_at(match.observed_at, zone)
    try:
        alert_id = None
        told: list[dict[str, Any]]
        if alerted:
            texts = alert_texts(match, card, snapshot_url)
            alert_id = store.publish(deps.alerts_topic_arn, json.dumps(texts["structure"]),
                                     subject=texts["subject"], site_id=match.site_id,
                                     structured=True)
            told = [_told(match, "subscribers", None, "sent", message_id=alert_id)]
            told += _tell_contact(match, str(case.get("contact") or ""), texts, deps)
        else:
            log.info("amber_alert: %s at %s within cooldown; banner only", match.person_id,
                     match.site_id)
            told = [_told(match, "subscribers", None, "cooldown")] + [
                _told(match, c.channel, c.address, "cooldown")
                for c in _contacts(str(case.get("contact") or ""))[0]]
        # "Who was told" lives with the case (the desk banner, the case page and later
        # emails read it from there); a failure to record it retries the whole sighting.
        deps.cases.append_told(match.person_id, told)
        name = card.get("name") or match.person_id
        strength = alerting.strength(match.distance, match.margin)
        words = alerting.STRENGTH_TEXT[strength]
        desk = events.DeskEvent(
            event_id=match.event_id, kind="missing_person_sighted", site_id=match.site_id,
            observed_at=match.observed_at, device_id=match.device_id,
            strength=strength, strength_text=words,
            match=match.model_copy(update={"snapshot_jpeg": None}),
            case={**card, "notified": any(t["outcome"] == "sent" for t in told),
                  "told": told, "told_text": alerting.told_text(told, zone),
                  "strength": strength, "strength_text": words,
                  "seen_local": seen.text, "time_zone": seen.time_zone,
                  "safety": alerting.SAFETY_LINE},
            snapshot_url=snapshot_url,
            message=clip(f"missing person {name} ({match.person_id}) seen on {match.camera_id}"),
        )
        desk_id = store.publish(deps.desk_topic_arn, desk.to_json(), site_id=match.site_id)
    except BaseException:
        if alerted:
            deps.cooldowns.cancel(match.person_id, match.site_id)
        raise
    return {"status": "alerted" if alerted else "cooldown", "event_id": match.event_id,
            "alert_message_id": alert_id, "desk_message_id": desk_id,
            "snapshot_url": snapshot_url}


def _contacts(text: str) -> tuple[list[contacts.Contact], str | None]:
    """The case's contacts, and why none could be read (an old case typed before upload
    validation, or a contact edited by hand)."""
    if not text.strip():
        return [], "no contact on the case"
    try:
        return contacts.parse(text), None
    except contacts.ContactError as exc:
        return [], str(exc)


def _told(match: events.MatchEvent, channel: str, to: str | None, outcome: alerting.Outcome,
          *, detail: str | None = None, message_id: str | None = None) -> dict[str, Any]:
    """One "who was told" entry (README "Who was told")."""
    return {"event_id": match.event_id, "at": utc_now(), "site_id": match.site_id,
            "camera_id": match.camera_id, "channel": channel, "to": to, "outcome": outcome,
            "detail": detail, "message_id": message_id}


def _tell_contact(match: events.MatchEvent, text: str, texts: dict[str, Any],
                  deps: AmberDeps) -> list[dict[str, Any]]:
    """Message the case's own contact (SNS direct SMS and/or SES email); one entry each.

    A refusal or an outage is recorded as ``failed`` and not raised: the subscribers have
    their alert already, and a retry of the sighting would message them twice.
    """
    found, why = _contacts(text)
    if why is not None:
        log.warning("amber_alert: %s has no usable contact: %s", match.person_id, why)
        return [_told(match, "sms", text[:200] or None, "invalid", detail=why)]
    out = []
    for c in found:
        try:
            if c.channel == "sms":
                mid = store.send_sms(c.address, texts["sms"], event_id=match.event_id)
            elif deps.email_from:
                mid = store.send_email(deps.email_from, c.address, texts["subject"],
                                       texts["email"])
            else:
                out.append(_told(match, c.channel, c.address, "failed",
                                 detail="no email sender configured (ALERT_EMAIL_FROM)"))
                continue
        except Exception as exc:  # SNS/SES refused or did not answer: say so, go on
            detail = clip(f"{type(exc).__name__}: {exc}")
            log.warning("amber_alert: %s to %s for %s failed: %s", c.channel,
                        contacts.mask(c.address), match.person_id, detail)
            out.append(_told(match, c.channel, c.address, "failed", detail=detail))
            continue
        log.info("amber_alert: %s sent to %s for %s (%s)", c.channel, contacts.mask(c.address),
                 match.person_id, mid)
        out.append(_told(match, c.channel, c.address, "sent", message_id=mid))
    return out


def _store_snapshot(match: events.MatchEvent, deps: AmberDeps) -> str | None:
    return store_snapshot(match, deps.bucket, expires_s=deps.snapshot_url_ttl_s,
                          handler="amber_alert")


def alert_texts(match: events.MatchEvent, case: dict[str, Any],
                snapshot_url: str | None) -> dict[str, Any]:
    """Subject, email/default text, and an SMS that is one segment (:func:`sms_text`).

    Times are in the case's agency zone (``case["time_zone"]``, IANA) with UTC beside them;
    the match strength is in words (:func:`oneeye.alerting.strength_text`), numbers after.
    """
    name = str(case.get("name") or "unknown name")
    seen = alerting.seen_at(match.observed_at, case.get("time_zone"))
    words = alerting.strength_text(match.distance, match.margin)
    skew = ""
    if match.clock_skew_s is not None and match.device_observed_at:
        skew = (f" (time of receipt; {alerting.skew_note(match.clock_skew_s)}: it said "
                f"{match.device_observed_at[11:16]} UTC)")
    lines = [
        f"Missing person sighted: {name} (case {match.person_id})",
        "",
        f"Site:    {match.site_id}",
        f"Camera:  {match.camera_id} (device {match.device_id})",
        f"Time:    {seen.text}{skew}",
        f"Match:   {words} — the camera's face and the case photo look "
        + ("very alike" if words.startswith("strong") else "alike; check the snapshot")
        + f" (distance {match.distance:.2f}, margin {match.margin:.2f})",
    ]
    for label, key in (("Age", "age"), ("Description", "description"),
                       ("Agency", "agency"), ("Contact", "contact")):
        if case.get(key):
            lines.append(f"{label}: {case[key]}")
    lines.append("")
    # the link alone on its line (in <>), so every mail client makes it clickable whole
    lines += (["Camera snapshot (link valid for a limited time):", f"<{snapshot_url}>"]
              if snapshot_url else ["No snapshot was sent by the camera."])
    lines.append(f"Verify before acting. {alerting.SAFETY_LINE}")
    if case.get("contact"):
        lines.append(f"Sent to the case contact ({case['contact']}) and the site's alert "
                     "subscribers.")
    email = "\n".join(lines)
    sms = sms_text(match, name, seen, words)
    return {
        "subject": _subject(f"OneEye alert: {name} ({match.person_id}) seen at {match.site_id}"),
        "sms": sms, "email": email,
        "structure": {"default": email, "email": email, "sms": sms},
    }


def sms_text(match: events.MatchEvent, name: str, seen: alerting.Seen | None = None,
             words: str | None = None) -> str:
    """``ALERT <case>: <name> seen <site>/<camera> <local> (<UTC>), strong match. Do not
    approach; contact the agency. Details by email.`` — always one SMS segment
    (:func:`oneeye.sms.one_segment`: GSM-7 ≤ 160 septets when the name transliterates,
    else UCS-2 ≤ 70 units), dropping the least needed parts first."""
    seen = seen or alerting.seen_at(match.observed_at, None)
    words = words or alerting.strength_text(match.distance, match.margin)
    where = f" seen {match.site_id}/{match.camera_id}"
    when = seen.utc_hhmm if seen.time_zone == "UTC" else f"{seen.local_hhmm} ({seen.utc_hhmm})"
    if match.clock_skew_s is not None:
        when += f" ({alerting.skew_note(match.clock_skew_s)})"
    head = f"ALERT {match.person_id}: "
    safety = alerting.SAFETY_LINE
    return sms.one_segment([
        (head, name, f"{where} {when}, {words}. {safety} Details by email."),
        (head, name, f"{where} {when}, {words}. {safety}"),
        (head, name, f"{where} {seen.utc_hhmm}, {words}. {safety}"),
        (head, name, f"{where} {seen.utc_hhmm}. Do not approach."),
        (head, name, f"{where} {seen.utc_hhmm}."),
    ])


def _subject(text: str) -> str:
    # SNS subjects must be ASCII, without line breaks, under 100 characters.
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = " ".join(ascii_text.split())
    return ascii_text[:SUBJECT_MAX]


def amber_deps(settings: AmberSettings) -> AmberDeps:
    return AmberDeps(
        idempotency=Idempotency(settings.idempotency_table),
        cooldowns=Cooldowns(settings.idempotency_table),
        cases=store.Cases(settings.cases_table),
        bucket=store.Bucket(settings.oneeye_bucket),
        alerts_topic_arn=settings.alerts_topic_arn,
        desk_topic_arn=settings.desk_topic_arn,
        cooldown_s=settings.alert_cooldown_s,
        snapshot_url_ttl_s=settings.snapshot_url_ttl_s,
        email_from=settings.alert_email_from,
        registry=registry(settings),
    )


def amber_from_env() -> AmberDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return amber_deps(AmberSettings.from_env(root="amber_alert"))
