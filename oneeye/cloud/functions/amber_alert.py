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

SMS text is at most 140 characters and carries no snapshot link: a presigned S3
URL alone is ~400 characters, and a link shortener would be a new service
holding personal data. The email (and the ``default`` text) carry the link,
valid for ``SNAPSHOT_URL_TTL_S``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import unicodedata
from dataclasses import dataclass
from typing import Any

from oneeye import events
from oneeye.alerting import strength
from oneeye.cloud.common import DeviceMessageDeps, Result, clip, once_per_match
from oneeye.cloud.dal import keys, store
from oneeye.cloud.dal.state import Cooldowns, Idempotency
from oneeye.cloud.devices import registry
from oneeye.cloud.settings import AmberSettings
from oneeye.types import SMS_MAX

log = logging.getLogger(__name__)

SUBJECT_MAX = 99
_CASE_FIELDS = ("name", "age", "description", "agency", "contact", "status")


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
    try:
        alert_id = None
        if alerted:
            texts = alert_texts(match, card, snapshot_url)
            alert_id = store.publish(deps.alerts_topic_arn, json.dumps(texts["structure"]),
                                     subject=texts["subject"], site_id=match.site_id,
                                     structured=True)
        else:
            log.info("amber_alert: %s at %s within cooldown; banner only", match.person_id,
                     match.site_id)
        name = card.get("name") or match.person_id
        desk = events.DeskEvent(
            event_id=match.event_id, kind="missing_person_sighted", site_id=match.site_id,
            observed_at=match.observed_at, device_id=match.device_id,
            match=match.model_copy(update={"snapshot_jpeg": None}),
            case={**card, "notified": alerted},
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


def _store_snapshot(match: events.MatchEvent, deps: AmberDeps) -> str | None:
    if not match.snapshot_jpeg:
        return None
    try:
        data = base64.b64decode(match.snapshot_jpeg, validate=True)
    except (binascii.Error, ValueError):
        log.warning("amber_alert: %s carries an undecodable snapshot; alerting without it",
                    match.event_id)
        return None
    if not data.startswith(b"\xff\xd8"):
        log.warning("amber_alert: %s snapshot is not a JPEG; alerting without it",
                    match.event_id)
        return None
    key = keys.snapshot(match.event_id)
    deps.bucket.put(key, data, content_type="image/jpeg")
    return deps.bucket.presign_get(key, expires_s=deps.snapshot_url_ttl_s)


def alert_texts(match: events.MatchEvent, case: dict[str, Any],
                snapshot_url: str | None) -> dict[str, Any]:
    """Subject, email/default text and an SMS of at most 140 characters."""
    name = str(case.get("name") or "unknown name")
    when = match.observed_at.replace("T", " ")[:16] + " UTC"
    lines = [
        f"Missing person sighted: {name} (case {match.person_id})",
        "",
        f"Site:    {match.site_id}",
        f"Camera:  {match.camera_id} (device {match.device_id})",
        f"Time:    {when}",
        f"Match:   {strength(match.distance, match.margin)} (distance {match.distance:.2f}, "
        f"margin {match.margin:.2f}; lower distance is closer)",
    ]
    for label, key in (("Age", "age"), ("Description", "description"),
                       ("Agency", "agency"), ("Contact", "contact")):
        if case.get(key):
            lines.append(f"{label}: {case[key]}")
    lines.append("")
    # the link alone on its line (in <>), so every mail client makes it clickable whole
    lines += (["Camera snapshot (link valid for a limited time):", f"<{snapshot_url}>"]
              if snapshot_url else ["No snapshot was sent by the camera."])
    lines.append("Verify before acting. Do not approach; contact the agency above.")
    email = "\n".join(lines)
    return {
        "subject": _subject(f"OneEye alert: {name} ({match.person_id}) seen at {match.site_id}"),
        "sms": sms_text(match, name),
        "structure": {"default": email, "email": email, "sms": sms_text(match, name)},
    }


def sms_text(match: events.MatchEvent, name: str) -> str:
    """``ALERT <case>: <name> seen <site>/<camera> <HH:MM>Z. Details by email.`` ≤ 140 chars."""
    hhmm = match.observed_at[11:16] + "Z"
    tail = f" seen {match.site_id}/{match.camera_id} {hhmm}. Details by email."
    head = f"ALERT {match.person_id}: "
    room = SMS_MAX - len(head) - len(tail)
    short = name if len(name) <= room else name[: max(0, room - 1)] + "…"
    text = head + short + tail
    if len(text) > SMS_MAX:  # only with absurdly long ids/sites: keep the case id, cut the rest
        text = text[: SMS_MAX - 1] + "…"
    return text


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
        registry=registry(settings),
    )


def amber_from_env() -> AmberDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return amber_deps(AmberSettings.from_env(root="amber_alert"))
