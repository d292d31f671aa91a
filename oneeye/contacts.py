"""A case's contact: the phone number (E.164) and/or email address sightings are sent to.

The phone page's "Contact for sightings" field holds one or two entries separated by a comma
or semicolon: a phone number in international form (``+44 20 7946 0958``, ``0044 20 7946 0958``)
and/or an email address. :func:`parse` validates and normalises them at upload — phones with
``phonenumbers`` (Google's libphonenumber data) to E.164, emails with ``email-validator``
(syntax only: no DNS lookup at upload) — and :func:`mask` is how a recipient is written in
logs. The normalised text (:func:`normalised`) is what the case stores and what
``amber_alert`` messages (:mod:`oneeye.cloud.functions.amber`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from oneeye.errors import ContactError

__all__ = ["RULE", "Contact", "ContactError", "mask", "normalised", "parse", "parse_one"]

Channel = Literal["sms", "email"]

#: The rule the phone page and the 400 answer state.
RULE: Final = ("a phone number in international form starting with + and the country code "
               "(e.g. +44 20 7946 0958) and/or an email address, separated by a comma")
MAX_LEN: Final = 200
_SPLIT = re.compile(r"[;,]")
# Control characters (newlines included) never belong in a contact: they are how a header
# or a log line is forged.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class Contact:
    channel: Channel
    #: E.164 (``+442079460958``) for ``sms``; the normalised address for ``email``.
    address: str


def parse_one(entry: str) -> Contact:
    text = entry.strip()
    if not text:
        raise ContactError(f"empty entry — use {RULE}")
    if _CONTROL.search(text):
        raise ContactError("contains a line break or control character")
    if "@" in text:
        try:
            result = validate_email(text, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ContactError(f"{_quote(text)} is not an email address: {exc}") from None
        return Contact("email", result.normalized)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        raise ContactError(f"{_quote(text)}: start a phone number with + and the country code "
                           "(e.g. +44 20 7946 0958)")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ContactError(f"{_quote(text)} is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ContactError(f"{_quote(text)} is not a valid phone number for its country code")
    return Contact("sms", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def parse(text: str) -> list[Contact]:
    """The contacts in ``text`` (1–2 entries, at most one per channel, ≤ 200 characters).

    Raises :class:`ContactError` naming the rule and the entry at fault.
    """
    if len(text) > MAX_LEN:
        raise ContactError(f"at most {MAX_LEN} characters")
    entries = [e for e in _SPLIT.split(text) if e.strip()]
    if not entries:
        raise ContactError(f"required — {RULE}")
    if len(entries) > 2:
        raise ContactError(f"at most two entries (one phone, one email) — {RULE}")
    found = [parse_one(e) for e in entries]
    if len({c.channel for c in found}) != len(found):
        raise ContactError(f"one phone and/or one email, not two of the same — {RULE}")
    return found


def normalised(contacts: list[Contact]) -> str:
    """The stored form: ``+442079460958, duty@agency.example``."""
    return ", ".join(c.address for c in contacts)


def mask(address: str) -> str:
    """A recipient as logs show it: ``+44*******123``, ``d***@agency.example``."""
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return address[:3] + "*" * max(0, len(address) - 6) + address[-3:]


def _quote(text: str) -> str:
    return repr(text[:60])
