"""How a sighting reads to a person: one wording for the desk, the email and the SMS.

How strong a match is (:func:`strength`), and how far off a device clock is
(:func:`skew_note`, when the cloud showed its own time instead of the device's).

``strong``: clearly inside the edge's decision rule (``oneeye.gallery.DecisionRule``:
distance ≤ 0.525, margin ≥ 0.085, chosen on lfw_dev for FMR ≤ 0.5 %). A match at distance
≤ 0.45 with margin ≥ 0.15 keeps a 0.075 / 0.065 cushion on both numbers. Everything the
edge announced but weaker is ``possible``: worth a look, not a certainty.
"""

from __future__ import annotations

from typing import Final, Literal

Strength = Literal["strong", "possible"]
STRONG_DISTANCE: Final = 0.45
STRONG_MARGIN: Final = 0.15


def strength(distance: float, margin: float) -> Strength:
    """Plain-language strength of an accepted match.

    ``distance``: the 128-d encoding distance to the best identity (lower is closer);
    ``margin``: the runner-up identity's distance minus the best.
    """
    return "strong" if distance <= STRONG_DISTANCE and margin >= STRONG_MARGIN else "possible"


def skew_note(skew_s: float) -> str:
    """``device clock 20 min slow`` / ``device clock 3 h fast`` for an offset in seconds."""
    size = abs(skew_s)
    amount = (f"{size:.0f} s" if size < 120 else f"{size / 60:.0f} min" if size < 7200
              else f"{size / 3600:.0f} h" if size < 172_800 else f"{size / 86_400:.0f} days")
    return f"device clock {amount} {'slow' if skew_s < 0 else 'fast'}"
