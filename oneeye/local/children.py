"""Child processes of ``oneeye up`` (dashboard, rules router, SNS delivery, edge).

Each :class:`Child` is supervised: when its process dies for any reason other than
our own :meth:`Child.stop`, the death is logged and the process is started again
after an exponential backoff with jitter (tenacity: ``first_restart_s`` doubling
up to ``max_restart_s``, plus up to ``first_restart_s`` at random); a child that then ran for
``stable_s`` starts the backoff over. The other parts of the stack keep running
meanwhile: a dead dashboard only delays deliveries (SNS delivery retries), a dead
rules router only delays the handling of what waits in its durable inbox.

Children get SIGTERM when ``oneeye up`` itself dies, so a ``kill -9`` of the stack
leaves no orphans holding its ports or its SQLite files: each is started through
:mod:`oneeye.local.lifeline` (``PR_SET_PDEATHSIG`` on Linux, set in the child before it
execs its program) and learns our pid from ``ONEEYE_SUPERVISOR_PID`` (the workers also
watch ``os.getppid()``, which works anywhere). Their output is read line by line and
re-emitted as ``[name] line`` on our stderr.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

from tenacity import RetryCallState, Retrying, retry_if_result, wait_exponential, wait_random

from oneeye.local.lifeline import SUPERVISOR_ENV

log = logging.getLogger(__name__)


class Child:
    """A supervised child process; ``on_start(child)`` runs after every (re)start."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], *,
                 restart: bool = True, first_restart_s: float = 0.5,
                 max_restart_s: float = 30.0, stable_s: float = 60.0,
                 on_start: Callable[[Child], object] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self._env = env
        self.restart = restart
        self.first_restart_s, self.max_restart_s = first_restart_s, max_restart_s
        self.stable_s = stable_s
        self.on_start = on_start
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    def start(self) -> Child:
        self._spawn()
        if self.restart:
            self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                                name=f"supervise-{self.name}")
            self._supervisor.start()
        return self

    @property
    def supervising(self) -> bool:
        """True while the supervisor thread may still restart the process."""
        return self._supervisor is not None and self._supervisor.is_alive()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # (the parent-death signal fires when the starting *thread* ends: spawns come
            # from the main or the supervisor thread, which live as long as the stack)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "oneeye.local.lifeline", *self.argv],
                env={**os.environ, **self._env, "PYTHONUNBUFFERED": "1",
                     SUPERVISOR_ENV: str(os.getpid())},
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            proc = self.proc
        threading.Thread(target=self._pump, args=(proc,), daemon=True,
                         name=f"log-{self.name}").start()
        log.info("started %s (pid %d)", self.name, proc.pid)
        if self.on_start is not None:
            self.on_start(self)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            # one Retrying per series of quick deaths: a child that ran stable_s s
            # leaves it (retry=False), and the next death starts the backoff over
            Retrying(wait=wait_exponential(multiplier=self.first_restart_s,
                                           max=self.max_restart_s)
                     + wait_random(0, self.first_restart_s),
                     retry=retry_if_result(self._died_quickly),
                     sleep=self._sleep, before_sleep=self._log_death,
                     )(self._run_until_exit)

    def _run_until_exit(self) -> float:
        """(Re)start the process if it is not running, wait for it; return how long it ran."""
        if not self.running and not self._stopping.is_set():
            self.restarts += 1
            log.warning("restarting %s (exit code %s; restart %d)", self.name,
                        self._returncode(), self.restarts)
            try:
                self._spawn()
            except OSError as exc:
                log.error("could not restart %s: %s", self.name, exc)
                return 0.0
        started = time.monotonic()
        proc = self.proc
        if proc is not None:
            proc.wait()
        return time.monotonic() - started

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)  # stop() cuts the backoff short

    def _died_quickly(self, ran_s: float) -> bool:
        return not self._stopping.is_set() and ran_s < self.stable_s

    def _log_death(self, state: RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s exited (code %s); restarting in %.1f s", self.name,
                    self._returncode(), delay)

    def _returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                sys.stderr.write(f"[{self.name}] {line}\n")
                sys.stderr.flush()

    def stop(self, grace_s: float = 10.0) -> int | None:
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", self.name, grace_s)
                proc.kill()
                proc.wait(5)
        return proc.returncode


def run_once(argv: Sequence[str], env: dict[str, str], stdin: str | None = None) -> str:
    """Run a short command (e.g. ``oneeye dashboard add-user``); raise on failure."""
    res = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env}, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}… failed ({res.returncode}): "
                         f"{(res.stderr or res.stdout).strip()[-500:]}")
    return res.stdout
