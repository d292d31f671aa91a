"""Times in the viewer's zone: storage and the API stay UTC (``oneeye.types``).

The page tells the server its IANA zone once (cookie ``tz``, set by desk.js from
``Intl.DateTimeFormat().resolvedOptions().timeZone``); a ``tz`` query argument wins
(links, CSV exports, tests). An unknown or missing zone is UTC, said on the page.
One display format everywhere: ``2026-01-31 14:05:09`` plus the zone's abbreviation.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import request

from oneeye.types import format_time, parse_time

DISPLAY = "%Y-%m-%d %H:%M:%S"


def viewer_zone() -> ZoneInfo:
    """The zone of this request's viewer (``tz`` argument, then cookie), else UTC.

    common.js writes the cookie percent-encoded (``Europe%2FParis``: ``/`` is not a cookie
    character) and Werkzeug hands cookies over undecoded, so the cookie is unquoted here.
    """
    name = request.args.get("tz") or unquote(request.cookies.get("tz") or "") or "UTC"
    try:
        return ZoneInfo(name[:64])
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local(value: str | None, zone: ZoneInfo | None = None) -> str:
    """A stored UTC timestamp in the viewer's zone and the one display format."""
    if not value:
        return ""
    try:
        moment = parse_time(value)
    except ValueError:
        return value
    shown = moment.astimezone(zone or viewer_zone())
    return f"{shown.strftime(DISPLAY)} {shown.tzname()}"


def day_bound(value: str, *, end: bool, zone: ZoneInfo | None = None) -> str:
    """``YYYY-MM-DD`` (a day in the viewer's zone) → its first or last millisecond, in UTC.

    Raises ValueError for anything else.
    """
    day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
    start = datetime.combine(day, time(0), tzinfo=zone or viewer_zone())
    moment = start + timedelta(days=1) - timedelta(milliseconds=1) if end else start
    return format_time(moment.astimezone(UTC))
