"""One encoding pool for every camera, served round-robin so no camera waits behind another.

A ``ThreadPoolExecutor`` is first in, first out: a camera facing a crowd would queue
dozens of encodings ahead of another camera's single face, and delay its event by
all of them. :class:`FairPool` keeps one queue per camera and its workers take the
next job from the next camera in turn, so a camera's job waits for at most one job
of each other camera. Each camera submits through its own :class:`Lane`, an
``Executor`` the pipeline uses like any other.

Jobs carry a rank (:class:`~oneeye.edge.detect.scheduler.Need`, via
:meth:`Lane.submit_ranked`; plain ``submit`` is ``UNDECIDED``): a worker takes the
best-ranked job waiting in any lane, round-robin among lanes holding that rank, so the
encoding of a face not yet decided never waits behind the re-check of a decided one.

    pool = FairPool(workers=2)
    lane = pool.lane("door")              # pass to Pipeline(pool=lane)
    future = lane.submit(fn, *args)       # concurrent.futures.Future
    pool.shutdown()                       # after every camera has drained
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from oneeye.edge.detect.scheduler import Need

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
#: (rank, future, function, args, kwargs)
_Job = tuple[int, Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class Lane(Executor):
    """One camera's door into the shared pool (``shutdown`` only closes this lane)."""

    def __init__(self, pool: FairPool, name: str) -> None:
        self._pool = pool
        self.name = name
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        return self.submit_ranked(Need.UNDECIDED, fn, *args, **kwargs)

    def submit_ranked(self, rank: Need, fn: Callable[P, T], /, *args: P.args,
                      **kwargs: P.kwargs) -> Future[T]:
        """``submit`` at ``rank``: served after every better-ranked job of any lane."""
        if self._closed:
            raise RuntimeError(f"lane {self.name} is shut down")
        return self._pool._submit(self.name, int(rank), fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close this lane; the pool's workers keep serving the other cameras."""
        self._closed = True


class FairPool:
    """``workers`` threads taking jobs round-robin from one queue per lane."""

    def __init__(self, workers: int, *, name: str = "oneeye-encode") -> None:
        self._cond = threading.Condition()
        self._queues: dict[str, deque[_Job]] = {}
        self._turn: deque[str] = deque()      # lanes in serving order
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def lane(self, name: str) -> Lane:
        with self._cond:
            if name not in self._queues:
                self._queues[name] = deque()
                self._turn.append(name)
        return Lane(self, name)

    def queued(self, name: str) -> int:
        """Jobs of lane ``name`` waiting for a worker."""
        with self._cond:
            return len(self._queues.get(name, ()))

    def _submit(self, name: str, rank: int, fn: Callable[..., T], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Future[T]:
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("pool is shut down")
            self._queues[name].append((rank, future, fn, args, kwargs))
            self._cond.notify()
        return future

    def _next(self) -> _Job | None:
        """The oldest job of the best rank waiting, from the next lane in turn holding that
        rank (rotating the lanes), or None once shut down."""
        with self._cond:
            while True:
                best = min((job[0] for q in self._queues.values() for job in q), default=None)
                if best is not None:
                    for _ in range(len(self._turn)):
                        name = self._turn[0]
                        self._turn.rotate(-1)
                        q = self._queues[name]
                        for i, job in enumerate(q):
                            if job[0] == best:
                                del q[i]
                                return job
                if self._closed:
                    return None
                self._cond.wait()

    def _work(self) -> None:
        while (job := self._next()) is not None:
            _rank, future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self, wait: bool = True) -> None:
        """Run what is queued, then stop the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait:
            for t in self._threads:
                t.join()
