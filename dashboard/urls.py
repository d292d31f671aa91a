"""URL grammar of the dashboard's routes: ``<id:name>`` matches only the one id grammar.

A path segment outside :data:`oneeye.types.ID_PATTERN` is a 404 before any view runs,
so no view re-checks its ids (``/people/bad%20id`` → 404).
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter

from oneeye.types import ID_PATTERN


class IdConverter(BaseConverter):
    """``<id:...>``: one path segment in the id grammar (letters, digits and ``_.:@-``)."""

    # Werkzeug anchors the converter's regex itself.
    regex = ID_PATTERN.removeprefix("^").removesuffix("$")
