"""Device clocks checked against the cloud's: the times people read come from a clock we trust.

Every time in a match is the device's (``observed_at``, and ``sent_at``, the device's clock
when it published). A branch device whose clock is off (RTC drift, NTP blocked, a board
booting at its last saved time) would otherwise put the wrong time in the SMS, the email
and the desk, and split one visit into two cards. :func:`trusted_match` compares the
device's clock with the time the cloud received the message:

- the device's offset is ``sent_at − received`` (transport takes well under a second), or
  ``observed_at − received`` for a device too old to send ``sent_at`` (a replayed backlog
  from such a device then counts as a slow clock: the time shown is the receipt time,
  which is said);
- within :data:`CLOCK_TOLERANCE_S` (default 120 s, ``ONEEYE_CLOCK_TOLERANCE_S``) the match
  is returned unchanged;
- beyond it, ``observed_at`` becomes the device's time corrected by the offset (so a
  backlog keeps its real age), ``device_observed_at`` keeps what the device said and
  ``clock_skew_s`` the offset; :func:`oneeye.alerting.skew_note` words it for people
  ("device clock 20 min slow"). Far-future times, slow clocks and clocks that jumped
  are all this one case.

:func:`trusted_health` does the same for ``oneeye.health/1`` (``sent_at``), setting its
``clock`` to ``skewed`` so the desk's camera panel shows the device.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

from oneeye import events
from oneeye.alerting import skew_note
from oneeye.types import format_time, parse_time

log = logging.getLogger(__name__)

#: Largest device clock offset taken as right (seconds): NTP-synced clocks are within a
#: second; 120 s leaves room for a slow IoT rule → Lambda hop and a clock that drifts
#: between NTP syncs. Set ``ONEEYE_CLOCK_TOLERANCE_S`` to change it.
CLOCK_TOLERANCE_S = 120.0


def tolerance_s() -> float:
    """:data:`CLOCK_TOLERANCE_S`, or ``ONEEYE_CLOCK_TOLERANCE_S`` when set (a ValueError
    names the variable when it is not a positive number)."""
    raw = os.environ.get("ONEEYE_CLOCK_TOLERANCE_S")
    if raw is None:
        return CLOCK_TOLERANCE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"ONEEYE_CLOCK_TOLERANCE_S must be a positive number of seconds, "
                         f"not {raw!r}")
    return value


def trusted_match(match: events.MatchEvent, received_at: datetime | None = None,
                  tolerance: float | None = None) -> events.MatchEvent:
    """``match`` with ``observed_at`` from a trusted clock (see the module doc).

    ``received_at``: when the cloud got it (default: now); ``tolerance``: seconds (default
    :func:`tolerance_s`). A match already checked (``clock_skew_s`` set) is returned as is.
    """
    if match.clock_skew_s is not None:
        return match
    received = received_at or datetime.now(UTC)
    limit = tolerance_s() if tolerance is None else tolerance
    device_now = parse_time(match.sent_at or match.observed_at)
    skew = (device_now - received).total_seconds()
    if abs(skew) <= limit:
        return match
    trusted = parse_time(match.observed_at) - timedelta(seconds=skew)
    log.warning("device %s: clock off by %+.0f s (%s): %s observed_at %s taken as %s",
                match.device_id, skew, skew_note(skew), match.event_id, match.observed_at,
                format_time(trusted))
    return match.model_copy(update={"observed_at": format_time(trusted),
                                    "device_observed_at": match.observed_at,
                                    "clock_skew_s": round(skew, 1)})


def trusted_health(health: events.HealthEvent, received_at: datetime | None = None,
                   tolerance: float | None = None) -> events.HealthEvent:
    """``health`` with ``clock.skew_s`` set and ``clock.state`` ``skewed`` when its
    ``sent_at`` is beyond the tolerance of the receive time (unchanged otherwise)."""
    received = received_at or datetime.now(UTC)
    limit = tolerance_s() if tolerance is None else tolerance
    skew = (parse_time(health.sent_at) - received).total_seconds()
    if abs(skew) <= limit:
        return health
    clock = health.clock or events.ClockHealth()
    return health.model_copy(update={
        "clock": clock.model_copy(update={"state": "skewed", "skew_s": round(skew, 1)}),
        "sent_at": format_time(received)})
