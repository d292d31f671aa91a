"""OneEye's vocabulary: every shared concept defined once, imported everywhere else.

A watchlist, the id grammar, a camera's state, a face box, a desk event's kind, the
timestamp format and the clock live here and nowhere else (``tests/test_vocabulary.py``
fails when a second definition appears). Lists derived from a ``Literal`` use
:func:`typing.get_args`, so adding a value here is the only change needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, get_args

from pydantic import AfterValidator, Field

# --- watchlists -------------------------------------------------------------------------

#: The two galleries a device matches against. ``missing``: a missing person's
#: ``person_id`` is the case id (``MP-2026-0001``).
Watchlist = Literal["customers", "missing"]
WATCHLISTS: Final[tuple[Watchlist, ...]] = get_args(Watchlist)

# --- ids ----------------------------------------------------------------------------------

#: The one id grammar of every contract (device, site, camera, person, case ids): 1–128
#: characters, letters, digits and ``_ . : @ -``, starting with a letter or digit. ``@``
#: is allowed because banks key customers by e-mail-like ids; ``/``, ``#``, ``+`` and
#: spaces are not, since ids appear in MQTT topics and S3 keys.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
ID_RE: Final = re.compile(ID_PATTERN)
Id = Annotated[str, Field(pattern=ID_PATTERN, description="id: letters, digits and _.:@-")]


def is_id(value: object) -> bool:
    """True when ``value`` is a string in the one id grammar (:data:`ID_PATTERN`)."""
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


# --- cameras and faces ----------------------------------------------------------------

#: A camera source's state, as reported in ``oneeye.health/1``.
CameraState = Literal["ok", "connecting", "reconnecting", "failed", "ended"]
CAMERA_STATES: Final[tuple[CameraState, ...]] = get_args(CameraState)

#: A face box in source-frame pixels, face_recognition's order: (top, right, bottom, left).
BBox = tuple[int, int, int, int]

#: File name endings that every command treats as still images (lower case). Files with
#: these endings go through the one decoder; those it cannot read are reported by name.
IMAGE_SUFFIXES: Final = frozenset({
    ".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff",
    ".heic", ".heif",
})

# --- desk ------------------------------------------------------------------------------

#: What a teller's desk shows (``oneeye.desk/1`` ``kind``).
DeskKind = Literal[
    "customer_arrived", "missing_person_sighted", "device_status", "device_offline",
    "device_online",
]
DESK_KINDS: Final[tuple[DeskKind, ...]] = get_args(DeskKind)

# --- time ------------------------------------------------------------------------------

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|z|[+-]\d{2}:?\d{2})$")


def format_time(value: datetime) -> str:
    """``value`` as UTC ISO-8601 with milliseconds and a ``Z``: the one timestamp format.

    Raises ValueError for a naive datetime (its zone would be a guess).
    """
    if value.tzinfo is None:
        raise ValueError("naive datetime: a timestamp needs a zone")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """Now, in the one timestamp format (see :func:`format_time`). The one clock."""
    return format_time(datetime.now(UTC))


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 timestamp with a zone (``Z`` or any ``±hh:mm``) to an aware UTC datetime.

    Raises ValueError (with an example of the right form) for anything else, naive
    timestamps and instants outside years 1–9999 in UTC included.
    """
    if not isinstance(value, str) or not _ISO.match(value):
        raise ValueError("must be an ISO-8601 timestamp with a zone, like 2026-01-31T12:00:00.000Z")
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # Python parses at most microseconds
        text = text.replace(frac.group(0), "." + frac.group(1)[:6], 1)
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # 0001-01-01 east of UTC, 9999-12-31 west
        raise ValueError(f"not a valid timestamp: {exc}") from exc


def normalize_time(value: str) -> str:
    """Any valid ISO-8601 timestamp with a zone, re-written in the one UTC format."""
    return format_time(parse_time(value))


#: A timestamp field of a contract: any ISO-8601 form with a zone is accepted at the
#: boundary and stored as UTC ``…Z`` with milliseconds.
UtcTimestamp = Annotated[str, AfterValidator(normalize_time)]

#: A clock as code under test takes it: seconds since the epoch (``time.time``'s contract).
#: Components that compare times with "now" (leases, cooldowns, retention) accept one, so
#: tests pass time by moving an injected clock instead of sleeping.
Clock = Callable[[], float]

# --- alerts ----------------------------------------------------------------------------

#: An SMS alert's length limit in characters: one GSM-7 SMS segment (160) less room for
#: the carrier's sender prefix. ``amber_alert`` writes texts within it; the local alert
#: outbox cuts anything longer, as a carrier would.
SMS_MAX: Final = 140

# --- people at the desk -------------------------------------------------------------------

#: A dashboard user's role (who may see and change what: ``dashboard/tenancy.py`` and the
#: README's tenancy table). ``teller``: the desk and history of their sites.
#: ``branch_admin``: also customers, the tellers of their sites, sites and the false-match
#: counts. ``agency_admin``: the officers of their own agency. ``agency_officer``: the
#: cases of their own agency (list, close), nothing of a bank's. Admins and agencies are
#: made by the operator (``oneeye dashboard add-user``, ``oneeye agency add``).
Role = Literal["teller", "branch_admin", "agency_admin", "agency_officer"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
#: Roles of the bank (their scope is sites) and of an agency (their scope is one agency,
#: by its id; they have no sites).
BANK_ROLES: Final[tuple[Role, ...]] = ("teller", "branch_admin")
AGENCY_ROLES: Final[tuple[Role, ...]] = ("agency_admin", "agency_officer")

#: A person's verdict on a sighting: "it is them" or "not this person" (a false match).
Verdict = Literal["confirmed", "rejected"]
VERDICTS: Final[tuple[Verdict, ...]] = get_args(Verdict)

#: Desk kinds that raise a banner and stay until acknowledged, grouped by their subject
#: (the case id for a sighting, the device id for an outage).
ALERT_KINDS: Final[tuple[DeskKind, ...]] = ("missing_person_sighted", "device_offline")
#: Desk kinds a history review shows by default; device kinds have their own view.
SIGHTING_KINDS: Final[tuple[DeskKind, ...]] = ("customer_arrived", "missing_person_sighted")
DEVICE_KINDS: Final[tuple[DeskKind, ...]] = ("device_status", "device_offline", "device_online")
