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
#:
#: Names people type (a camera "Eingang-Süd", a site "Zürich HB") are refused, never
#: guessed at: ids are keys in MQTT topics, S3 keys, IoT thing attributes and URLs, and
#: AWS IoT thing names are narrower still (``[a-zA-Z0-9:_-]``). Every refusal names the
#: value and the rule it breaks (:func:`id_problem`, :func:`id_refusal`) and, where one
#: exists, an ASCII spelling that passes.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
ID_RE: Final = re.compile(ID_PATTERN)
ID_MAX: Final = 128
#: The grammar in words, for messages.
ID_RULE: Final = ("an id is 1–128 ASCII letters, digits and _ . : @ -, starting with a "
                  "letter or digit")
_ID_CHAR = re.compile(ID_PATTERN[ID_PATTERN.index("]") + 1:ID_PATTERN.index("{")])
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                           "ß": "ss", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "å": "a",
                           "Å": "A", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th"})


def is_id(value: object) -> bool:
    """True when ``value`` is a string in the one id grammar (:data:`ID_PATTERN`)."""
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def id_problem(value: object) -> str | None:
    """Which rule of the id grammar ``value`` breaks, in words, or None for a valid id."""
    if not isinstance(value, str):
        return f"it is {type(value).__name__}, not text"
    if ID_RE.fullmatch(value):
        return None
    if not value:
        return "it is empty"
    if len(value) > ID_MAX:
        return f"it is {len(value)} characters long (at most {ID_MAX})"
    bad = sorted({c for c in value if not _ID_CHAR.fullmatch(c)}, key=value.index)
    if bad:
        shown = ", ".join("space" if c == " " else repr(c) for c in bad[:5])
        return f"{shown} {'is' if len(bad) == 1 else 'are'} not allowed"
    if not _ID_CHAR.fullmatch(value[0]) or not value[0].isalnum():
        return f"it starts with {value[0]!r}"
    return None


def id_suggestion(value: str) -> str | None:
    """An ASCII id close to ``value`` (umlauts spelled out, accents dropped, anything
    else outside the grammar turned into ``-``), or None when nothing sensible is left."""
    import unicodedata

    text = unicodedata.normalize("NFKD", value.translate(_TRANSLIT))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"-{2,}", "-", "".join(c if _ID_CHAR.fullmatch(c) else "-" for c in text))
    text = text.strip("-_.:@")[:ID_MAX]
    return text if is_id(text) and text != value else None


def id_refusal(what: str, value: object) -> str | None:
    """The message refusing ``value`` as a ``what`` ("camera name", "case id" …): which
    value, which rule, and an ASCII spelling that would pass; None for a valid id."""
    problem = id_problem(value)
    if problem is None:
        return None
    shown = repr(value) if not isinstance(value, str) or len(value) <= 60 \
        else repr(value[:60] + "…")
    hint = id_suggestion(value) if isinstance(value, str) and len(value) <= ID_MAX else None
    return (f"{what} {shown} is not a valid id: {problem}; {ID_RULE}"
            + (f" (e.g. {hint!r})" if hint else ""))


def _check_id(value: str) -> str:
    """an id: 1–128 ASCII letters, digits and _.:@-, starting with a letter or digit"""
    if ID_RE.fullmatch(value):      # the common case, at the cost of one regex
        return value
    message = id_refusal("value", value)
    if message is not None:
        raise ValueError(message)
    return value


Id = Annotated[str, AfterValidator(_check_id),
               Field(json_schema_extra={"pattern": ID_PATTERN},
                     description="id: letters, digits and _.:@-")]


# --- cameras and faces ----------------------------------------------------------------

#: A camera source's state, as reported in ``oneeye.health/1``.
CameraState = Literal["ok", "connecting", "reconnecting", "failed", "ended"]
CAMERA_STATES: Final[tuple[CameraState, ...]] = get_args(CameraState)

#: The state of a store the edge writes (the outbox, the gallery cache), as reported in
#: ``oneeye.health/1`` ``storage``. ``ok``: writable. ``full``: no space left (ENOSPC,
#: SQLITE_FULL). ``quota``: the user's disk quota is used up (EDQUOT). ``read_only``: the
#: file system is mounted read-only (EROFS, SQLITE_READONLY). ``permission_denied``: the
#: process may not write there (EACCES/EPERM). ``missing_dir``: the directory is gone and
#: cannot be made (an unmounted data partition). ``corrupt``: the file is not a readable
#: database (moved aside, a new one started). ``io_error``: any other I/O failure.
StorageState = Literal["ok", "full", "quota", "read_only", "permission_denied", "missing_dir",
                       "corrupt", "io_error"]
STORAGE_STATES: Final[tuple[StorageState, ...]] = get_args(StorageState)

#: A device clock's state, as reported in ``oneeye.health/1`` ``clock``. ``ok``: NTP says
#: synchronised and no jump was seen. ``unsynced``: the kernel says NTP has not set the
#: clock. ``unknown``: nothing tells (no adjtimex, a container). ``jumped``: the wall clock
#: moved against the monotonic clock by more than the tolerance since the last look.
#: ``skewed``: set by the cloud, which compared a device's timestamps with its receive time.
ClockState = Literal["ok", "unsynced", "unknown", "jumped", "skewed"]
CLOCK_STATES: Final[tuple[ClockState, ...]] = get_args(ClockState)

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
#: How strong a match reads to a person (:func:`oneeye.alerting.strength` decides it, once,
#: where the match is enriched; the desk event carries it).
Strength = Literal["strong", "possible"]

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

# --- secrets in text -----------------------------------------------------------------------

#: The user-info of a URL (``scheme://user:password@``): what every camera and broker URL
#: may carry and no log line, health field or page may show.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s?#]*)@")
#: What stands for a URL's user-info wherever a URL is shown (``rtsp://***@host/…``).
REDACTED: Final = "***"


def redact_url(text: object) -> str:
    """``text`` (a URL, a source spec or a whole log line) with every URL's user-info masked.

    ``rtsp://admin:S3cretPass@10.0.0.5/stream1`` → ``rtsp://***@10.0.0.5/stream1``. The
    user name goes too: it is half of the credential and often the camera's default. Text
    without ``scheme://…@`` is returned unchanged (files, webcam numbers, ``ipc``).
    """
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", str(text))
