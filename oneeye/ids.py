"""Sortable unique ids (UUIDv7, RFC 9562) for events, uploads and versions.

Python 3.11 has no ``uuid.uuid7``; this is the 48-bit millisecond timestamp
layout with a monotonic counter so ids made in the same millisecond by one
process still sort in creation order.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """Return a new UUIDv7 string; later calls in one process sort after earlier ones."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # 12-bit counter exhausted: borrow the next millisecond
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave headroom
        _last_ms = ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (counter & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand_b
    return str(uuid.UUID(int=value))


def id_time_ms(value: str) -> int:
    """The creation time (Unix ms) encoded in a UUIDv7 string."""
    return uuid.UUID(value).int >> 80


def is_uuid7(value: str) -> bool:
    """True for a UUID string of version 7 (what :func:`new_id` makes)."""
    try:
        return uuid.UUID(value).version == 7
    except (ValueError, AttributeError, TypeError):
        return False
