"""How strong a match looks to a person: one wording for the desk, the email and the SMS.

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
