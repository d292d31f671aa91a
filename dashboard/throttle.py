"""Failed-login counters shared by every dashboard process: per account, per address.

A login is refused (429) while the *account* has ``login_attempts`` failures in the
last ``login_window_s`` seconds, or the client *address* has ``login_ip_attempts``
(a much higher ceiling: a branch behind one proxy or NAT shares an address, so one
typist must never lock out the others). A successful login clears the account's
count.

Counters live where every process sees them: Redis (a sorted set of failure times
per key, so the window slides) when ``login_store`` or ``message_queue`` is a
``redis://`` URL, else the dashboard database
(:class:`dashboard.store.users.LoginFailures`, which is a :class:`Counters`).
The clock is injectable so tests pass time without sleeping.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Protocol

import redis

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class Counters(Protocol):
    """A failure log per key; times are seconds since the epoch."""

    def add(self, key: str, at: float, window_s: float) -> None: ...
    def count(self, key: str, since: float) -> int: ...
    def clear(self, key: str) -> None: ...


class RedisCounters:
    """Counters in Redis: one sorted set per key, scored by failure time, expiring."""

    PREFIX = "oneeye:login-failures:"

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)

    def add(self, key: str, at: float, window_s: float) -> None:
        name = self.PREFIX + key
        pipe = self._redis.pipeline()
        pipe.zadd(name, {f"{at:.6f}-{secrets.token_hex(4)}": at})
        pipe.zremrangebyscore(name, "-inf", at - window_s)
        pipe.expire(name, max(1, int(window_s) + 1))
        pipe.execute()

    def count(self, key: str, since: float) -> int:
        return int(self._redis.zcount(self.PREFIX + key, since, "+inf"))

    def clear(self, key: str) -> None:
        self._redis.delete(self.PREFIX + key)


class LoginThrottle:
    """Decides whether a login attempt may be checked at all, and records failures."""

    def __init__(self, counters: Counters, *, account_attempts: int, address_attempts: int,
                 window_s: float, clock: Clock = time.time) -> None:
        self.counters = counters
        self.account_attempts, self.address_attempts = account_attempts, address_attempts
        self.window_s = window_s
        self.clock = clock

    @staticmethod
    def account_key(name: str) -> str:
        return "user:" + name.strip().lower()

    @staticmethod
    def address_key(address: str | None) -> str:
        return "ip:" + (address or "unknown")

    def blocked(self, name: str, address: str | None) -> bool:
        since = self.clock() - self.window_s
        return (self.counters.count(self.account_key(name), since) >= self.account_attempts
                or self.counters.count(self.address_key(address), since)
                >= self.address_attempts)

    def failed(self, name: str, address: str | None) -> None:
        now = self.clock()
        self.counters.add(self.account_key(name), now, self.window_s)
        self.counters.add(self.address_key(address), now, self.window_s)

    def succeeded(self, name: str) -> None:
        self.counters.clear(self.account_key(name))


def counters_for(url: str | None, database: Counters) -> Counters:
    """Redis counters for a ``redis://``/``rediss://``/``unix://`` URL, else ``database``
    (the store's ``login_failures``)."""
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCounters(url)
    return database
