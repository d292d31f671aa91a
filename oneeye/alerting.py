"""How a sighting reads to a person: one wording for the desk, the email and the SMS.

How strong a match is (:func:`strength`), and how far off a device clock is
(:func:`skew_note`, when the cloud showed its own time instead of the device's).

``strong``: clearly inside the edge's decision rule (``oneeye.gallery.DecisionRule``:
distance ≤ 0.525, margin ≥ 0.085, chosen on lfw_dev for FMR ≤ 0.5 %). A match at distance
≤ 0.45 with margin ≥ 0.15 keeps a 0.075 / 0.065 cushion on both numbers. Everything the
edge announced but weaker is ``possible``: worth a look, not a certainty.

Also defined once here for every alert: the words for a strength (:func:`strength_text`), the
safety line (:data:`SAFETY_LINE`), a sighting's time in the agency's zone with UTC beside it
(:func:`seen_at`), and what became of each message (:data:`Outcome`, :func:`told_text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from oneeye.types import Strength

STRONG_DISTANCE: Final = 0.45
STRONG_MARGIN: Final = 0.15


def strength(distance: float, margin: float) -> Strength:
    """Plain-language strength of an accepted match.

    ``distance``: the 128-d encoding distance to the best identity (lower is closer);
    ``margin``: the runner-up identity's distance minus the best.
    """
    return "strong" if distance <= STRONG_DISTANCE and margin >= STRONG_MARGIN else "possible"


#: What the desk and the SMS say for each :data:`Strength` (the email adds the numbers).
STRENGTH_TEXT: Final[dict[Strength, str]] = {"strong": "strong match",
                                             "possible": "possible match"}
#: The safety line of every alert: email, SMS and the desk banner (``case.safety``).
SAFETY_LINE: Final = "Do not approach; contact the agency."


def strength_text(distance: float, margin: float) -> str:
    """``"strong match"`` or ``"possible match"``: the words the desk and the SMS use."""
    return STRENGTH_TEXT[strength(distance, margin)]


def check_time_zone(name: str) -> str:
    """An IANA time zone name (``Europe/Paris``), or ValueError naming the rule."""
    if not isinstance(name, str) or name not in _zone_names():
        raise ValueError(f"unknown time zone {str(name)[:60]!r}: use an IANA name such as "
                         "Europe/London or America/New_York")
    return name


def _zone_names() -> set[str]:
    from zoneinfo import available_timezones

    return available_timezones() | {"UTC"}


@dataclass(frozen=True)
class Seen:
    """A sighting's time as the agency reads it. ``observed_at``: RFC 3339 UTC (``…Z``)."""

    #: ``2026-12-06 21:45 CET`` in the agency's zone (the UTC text when the zone is UTC)
    local: str
    #: ``2026-12-06 20:45 UTC``
    utc: str
    #: ``21:45 CET`` / ``20:45Z``: the short forms the SMS uses
    local_hhmm: str
    utc_hhmm: str
    time_zone: str

    @property
    def text(self) -> str:
        """``2026-12-06 21:45 CET (20:45 UTC)``, or ``2026-12-06 20:45 UTC`` in UTC."""
        if self.time_zone == "UTC":
            return self.utc
        return f"{self.local} ({self.utc[11:]})"


def seen_at(observed_at: str, time_zone: str | None) -> Seen:
    """``observed_at`` in the agency's ``time_zone`` (an IANA name; None or unknown: UTC)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    at = datetime.fromisoformat(observed_at.replace("Z", "+00:00")).astimezone(UTC)
    zone = time_zone if time_zone and time_zone in _zone_names() else "UTC"
    local = at.astimezone(ZoneInfo(zone))
    abbrev = local.strftime("%Z") or zone
    return Seen(local=local.strftime("%Y-%m-%d %H:%M ") + abbrev,
                utc=at.strftime("%Y-%m-%d %H:%M UTC"),
                local_hhmm=local.strftime("%H:%M ") + abbrev, utc_hhmm=at.strftime("%H:%MZ"),
                time_zone=zone)


# --------------------------------------------------------------------------- who was told

#: What became of one message to one recipient (README "Who was told"):
#: ``sent`` — handed to SNS/SES (or the local alert outbox); ``cooldown`` — not sent, the
#: case was alerted at this site within ``ALERT_COOLDOWN_S``; ``invalid`` — the stored
#: contact is not a valid phone number or email; ``failed`` — SNS/SES refused or did not answer.
Outcome = Literal["sent", "cooldown", "invalid", "failed"]
Channel = Literal["sms", "email", "subscribers"]
_OUTCOME_TEXT: Final[dict[str, str]] = {
    "sent": "sent", "cooldown": "not sent (already alerted within the cooldown)",
    "invalid": "not sent (invalid contact)", "failed": "delivery failed"}
_CHANNEL_TEXT: Final[dict[str, str]] = {"sms": "SMS", "email": "Email",
                                        "subscribers": "Alert subscribers"}


def told_entry_text(told: dict[str, Any]) -> str:
    """One "who was told" entry in words, without its time: ``SMS to +442079460958 sent``,
    ``Alert subscribers not sent (already alerted within the cooldown)``."""
    who = _CHANNEL_TEXT.get(str(told.get("channel")), str(told.get("channel")))
    if told.get("channel") != "subscribers":
        who += f" to {told.get('to')}"
    return f"{who} {_OUTCOME_TEXT.get(str(told.get('outcome')), str(told.get('outcome')))}"


def told_text(told: list[dict[str, Any]], time_zone: str | None = None) -> str:
    """One sentence for the banner from a sighting's ``told`` entries (each ``{channel, to,
    outcome, at, detail}``): ``SMS to +442079460958 sent 21:45 CET; Email to d@x.example
    delivery failed`` — or ``Nobody was messaged`` for an empty list."""
    parts = []
    for t in told:
        part = told_entry_text(t)
        if t.get("outcome") == "sent" and t.get("at"):
            part += f" {seen_at(str(t['at']), time_zone).local_hhmm}"
        parts.append(part)
    return "; ".join(parts) if parts else "Nobody was messaged"


def skew_note(skew_s: float) -> str:
    """``device clock 20 min slow`` / ``device clock 3 h fast`` for an offset in seconds."""
    size = abs(skew_s)
    amount = (f"{size:.0f} s" if size < 120 else f"{size / 60:.0f} min" if size < 7200
              else f"{size / 3600:.0f} h" if size < 172_800 else f"{size / 86_400:.0f} days")
    return f"device clock {amount} {'slow' if skew_s < 0 else 'fast'}"
