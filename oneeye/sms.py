"""SMS text that costs one message: GSM 03.38 where the text allows, else one UCS-2 segment.

No maintained PyPI package does GSM-7 segment counting and transliteration (the index has SMS
gateway clients only), so this is the one small module for it. Sources of the numbers:
3GPP TS 23.038 §6.2.1 (the GSM 7-bit default alphabet and its extension table, whose
characters take an escape septet, so 2 septets each) and TS 23.040 (one SMS carries 140
octets: 160 septets of GSM-7 or 70 UTF-16 code units of UCS-2; a concatenated message loses
the UDH, leaving 153 / 67 per segment).

:func:`to_gsm` replaces look-alikes (’ → ', “ ” → ", … → ..., – — → -) and strips
diacritics that the GSM alphabet lacks (Ł → L, ó → o) while keeping those it has
(é, ü, ñ, Ø, ß …). Text that still holds a letter outside GSM (Cyrillic, Greek small letters,
CJK, Arabic) cannot be transliterated without losing the name: it is sent as UCS-2, with its
own letters, and must fit 70 code units.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

#: TS 23.038 default alphabet (one septet each) and extension table (two septets each).
GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION: Final = frozenset("^{}\\[~]|€\f")
#: One-segment capacities (TS 23.040): septets of GSM-7, UTF-16 code units of UCS-2.
GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

#: Look-alikes a phone keyboard or OneEye itself types, and letters NFKD does not decompose.
_LOOKALIKE: Final = {
    "’": "'", "‘": "'", "‚": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "″": '"', "«": '"', "»": '"',
    "…": "...", "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\t": " ",
    "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Ħ": "H", "ħ": "h",
    "ı": "i", "Œ": "OE", "œ": "oe", "Þ": "Th", "þ": "th", "ŀ": "l", "Ŀ": "L",
}


def is_gsm(text: str) -> bool:
    return all(c in GSM_BASIC or c in GSM_EXTENSION for c in text)


def _char_to_gsm(c: str) -> str | None:
    if c in GSM_BASIC or c in GSM_EXTENSION:
        return c
    if c in _LOOKALIKE:
        return _LOOKALIKE[c]
    # é is GSM but ó is not: decompose, drop the combining marks, keep a GSM base letter.
    base = "".join(ch for ch in unicodedata.normalize("NFKD", c)
                   if not unicodedata.combining(ch))
    if base and is_gsm(base):
        return base
    return None


def to_gsm(text: str) -> str | None:
    """``text`` in the GSM 7-bit alphabet (look-alikes replaced, missing diacritics
    stripped), or None when some character has no GSM form (a name in another script)."""
    out = []
    for c in text:
        g = _char_to_gsm(c)
        if g is None:
            return None
        out.append(g)
    return "".join(out)


@dataclass(frozen=True)
class Segments:
    """How a carrier bills ``text``: its encoding, its length in units (septets for GSM-7,
    UTF-16 code units for UCS-2) and the number of SMS segments."""

    encoding: Encoding
    units: int
    count: int


def segments(text: str) -> Segments:
    if is_gsm(text):
        n = sum(2 if c in GSM_EXTENSION else 1 for c in text)
        return Segments("GSM-7", n, 1 if n <= GSM_SINGLE else -(-n // GSM_MULTI))
    n = len(text.encode("utf-16-le")) // 2
    return Segments("UCS-2", n, 1 if n <= UCS2_SINGLE else -(-n // UCS2_MULTI))


def fits_one(text: str) -> bool:
    return segments(text).count == 1


def one_segment(variants: Sequence[tuple[str, str, str]]) -> str:
    """The first of ``variants`` (``(head, name, tail)``, richest first) that fits one SMS.

    Each part is transliterated to GSM-7 when the whole text allows; a name that cannot be
    is kept in its own letters (UCS-2). The name is shortened with ``...`` (GSM) or ``…``
    (UCS-2, one unit) only when even the plainest variant does not fit; as a last resort the
    plainest text is cut to one segment. Raises ValueError for no variants.
    """
    if not variants:
        raise ValueError("one_segment() needs at least one variant")
    texts = []
    for head, name, tail in variants:
        gsm = to_gsm(head + name + tail)
        parts = ((to_gsm(head) or head, to_gsm(name) or name, to_gsm(tail) or tail)
                 if gsm is not None else (head, name, tail))
        texts.append(parts)
        if fits_one("".join(parts)):
            return "".join(parts)
    head, name, tail = texts[-1]
    ellipsis = "..." if is_gsm(head + name + tail) else "…"
    for keep in range(len(name) - 1, 0, -1):
        text = head + name[:keep].rstrip() + ellipsis + tail
        if fits_one(text):
            return text
    text = head + name + tail
    while text and not fits_one(text + ellipsis):
        text = text[:-1]
    return text + ellipsis
