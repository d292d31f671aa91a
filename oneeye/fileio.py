"""Reading a file a user named: one wording for every "cannot read" (path, what, OS reason).

Each caller passes its own error class, so a settings file fails as ``ConfigError``, a
gallery as ``GalleryError`` and a photo as ``ImageError``, all worded alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from oneeye.errors import OneEyeError


def read_bytes(path: Path, what: str, error: Callable[[str], OneEyeError]) -> bytes:
    """The bytes of ``path``.

    Raises ``error("{path}: cannot read {what} ({reason})")`` on any ``OSError``
    (missing, a directory, no permission), with the OS's reason (``strerror``).
    """
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from exc


def read_text(path: Path, what: str, error: Callable[[str], OneEyeError]) -> str:
    """The UTF-8 text of ``path``; as :func:`read_bytes`, and ``error`` when not UTF-8."""
    data = read_bytes(path, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from exc
