"""A child of ``oneeye up`` ends when its supervisor dies, however it dies (``kill -9``).

Two ways, keyed by the supervisor's pid that :class:`oneeye.local.children.Child`
passes in ``ONEEYE_SUPERVISOR_PID``:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (ctypes on libc). Every child is started
  through this module (``python -m oneeye.local.lifeline ARGV…``), which sets the
  signal in its own, fresh process and then execs ``ARGV`` (the setting survives
  ``execve``): no ``preexec_fn`` runs in a half-forked copy of the many-threaded
  supervisor, where a lock another thread held at ``fork()`` (the dynamic loader's,
  for one) stays held forever. The kernel sends the signal when the thread that
  started the child ends; ``Child`` starts them from threads that live as long as the
  stack.
- anywhere: :func:`watch_parent`, a thread that sends the same signal to its own
  process when ``os.getppid()`` changes (an orphan is adopted by init or a subreaper).
  The workers (``oneeye.local.workers``) run it besides the signal.

Both check the parent once they are in place, so a supervisor that died in between
is noticed too. What the signal then does is the child's own business: the workers
finish what they hold and exit within their grace period.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

SUPERVISOR_ENV = "ONEEYE_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1
POLL_S = 0.2


def supervisor_pid(environ: MutableMapping[str, str] | None = None, *,
                   pop: bool = False) -> int | None:
    """The supervisor's pid from the environment, or None; ``pop`` keeps it from the
    process's own children (whose parent it is not)."""
    env = os.environ if environ is None else environ
    raw = env.pop(SUPERVISOR_ENV, None) if pop else env.get(SUPERVISOR_ENV)
    return int(raw) if raw and raw.isdigit() else None


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send ``sig`` when the parent dies. False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no prctl in this libc: the watcher still works
        return False


def watch_parent(parent_pid: int, sig: int = signal.SIGTERM,
                 poll_s: float = POLL_S) -> threading.Thread:
    """Send ``sig`` to this process once its parent is no longer ``parent_pid``
    (at once if it is not now); the portable stand-in for the parent-death signal."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        log.warning("supervisor (pid %d) is gone; stopping", parent_pid)
        os.kill(os.getpid(), sig)

    thread = threading.Thread(target=watch, daemon=True, name="lifeline")
    thread.start()
    return thread


def guard(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Both: the kernel's signal where there is one, and the watcher."""
    set_parent_death_signal(sig)
    watch_parent(parent_pid, sig)


def main(argv: list[str] | None = None) -> int:
    """``python -m oneeye.local.lifeline ARGV…``: set the parent-death signal, exec ARGV."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m oneeye.local.lifeline PROGRAM [ARG…]", file=sys.stderr)
        return 2
    parent = supervisor_pid()
    if parent is not None:
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before the signal was set
            return 1
    try:
        os.execvp(args[0], args)
    except OSError as exc:
        print(f"cannot run {args[0]}: {exc}", file=sys.stderr)
    return 127


if __name__ == "__main__":
    raise SystemExit(main())
