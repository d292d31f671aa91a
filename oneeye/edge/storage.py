"""What is wrong with the device's storage, in one word: the states of ``StorageState``.

A store that fails to write (the outbox, the gallery cache) asks :func:`classify` why.
SQLite's own result code says a little (``SQLITE_FULL``, ``SQLITE_READONLY``,
``SQLITE_NOTADB``), but a full or read-only partition often surfaces as a bare
``disk I/O error`` (``SQLITE_IOERR``: the ``-shm`` file could not be grown) — so for
everything but corruption the directory itself is probed: a small file is created,
written and fsynced there, and the operating system's ``errno`` names the fault
(``ENOSPC`` full, ``EDQUOT`` quota, ``EROFS`` read-only, ``EACCES``/``EPERM`` permission
denied, ``ENOENT`` missing directory). Only a file SQLite cannot read as a database is
``corrupt``: that one, and nothing else, may be moved aside.

    state, detail = classify(exc, path.parent)
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from pathlib import Path

from oneeye.events import clip
from oneeye.types import StorageState

#: errno → state, for OSError and for the probe.
_ERRNO: dict[int, StorageState] = {
    errno.ENOSPC: "full", errno.EDQUOT: "quota", errno.EFBIG: "full", errno.EROFS: "read_only",
    errno.EACCES: "permission_denied", errno.EPERM: "permission_denied",
    errno.ENOENT: "missing_dir", errno.ENOTDIR: "missing_dir",
}
#: SQLite primary result codes (https://sqlite.org/rescode.html) that mean "not a database".
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_SQLITE_FULL = 13
_SQLITE_READONLY = 8


def probe(directory: Path) -> tuple[StorageState, str]:
    """Can a file be created, written and fsynced in ``directory``? ``("ok", "")`` or the
    fault and the OS's words. Writes 4 KB: a nearly full disk with a few bytes free is full
    for an SQLite page too."""
    if not directory.is_dir():
        return "missing_dir", f"{directory} does not exist"
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".oneeye-probe-") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        return classify_os_error(exc), clip(f"{directory}: {exc.strerror or exc}")
    return "ok", ""


def classify_os_error(exc: OSError) -> StorageState:
    """The state an ``OSError`` from a write stands for (``io_error`` when unknown)."""
    return _ERRNO.get(exc.errno or 0, "io_error")


def classify(exc: BaseException, directory: Path) -> tuple[StorageState, str]:
    """Why a write to a store in ``directory`` failed with ``exc``: (state, detail).

    ``exc`` is an ``sqlite3.Error`` or an ``OSError``. Corruption is told by SQLite alone;
    every other fault is confirmed by :func:`probe` (so a quota is not reported as a full
    disk, nor a read-only mount as a permission problem). ``SQLITE_FULL`` with a directory
    that takes a small file is still ``full``: the database hit its own size limit.
    """
    detail = clip(str(exc) or type(exc).__name__)
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
                code == 0 and isinstance(exc, sqlite3.DatabaseError)
                and not isinstance(exc, sqlite3.OperationalError)):
            return "corrupt", detail
        state, why = probe(directory)
        if state != "ok":
            return state, clip(f"{detail}; {why}")
        if code == _SQLITE_FULL:
            return "full", detail
        if code == _SQLITE_READONLY:
            return "read_only", detail
        return "io_error", detail
    if isinstance(exc, OSError):
        state = classify_os_error(exc)
        return state, detail
    return "io_error", detail
