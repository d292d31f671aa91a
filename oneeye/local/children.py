"""Child processes of ``oneeye up`` (dashboard, edge) with prefixed, readable logs.

Children share the terminal's process group, so Ctrl-C reaches them directly;
:meth:`Child.stop` covers SIGTERM to the stack and ``--duration``: SIGTERM,
a grace period, then SIGKILL. Their output is read line by line and re-emitted
as ``[name] line`` on our stderr.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

log = logging.getLogger(__name__)


class Child:
    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = list(argv)
        self._env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        self.proc = subprocess.Popen(self.argv, env={**os.environ, **self._env,
                                                     "PYTHONUNBUFFERED": "1"},
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        threading.Thread(target=self._pump, daemon=True, name=f"log-{self.name}").start()
        log.info("started %s (pid %d)", self.name, self.proc.pid)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                sys.stderr.write(f"[{self.name}] {line}\n")
                sys.stderr.flush()

    def stop(self, grace_s: float = 10.0) -> int | None:
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
