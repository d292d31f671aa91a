"""A real small data partition for storage-fault tests, and an edge uplink driven by a test.

:class:`TinyPartition` mounts a tmpfs of a few hundred KB at a directory inside a private
mount namespace (``unshare -m``: the host's mounts are untouched and the mount vanishes
with the namespace). A process started with :meth:`TinyPartition.run` / ``popen`` sees it;
:meth:`fill` writes a file until ``ENOSPC`` (a real full disk), :meth:`free` removes it,
:meth:`read_only` remounts it ``ro`` (a real ``EROFS``). Running as root, so permissions
cannot be tested with ``chmod`` alone: :data:`AS_NOBODY` runs a process as uid 65534.

``python -m tests.storage_support URL OUTBOX_PATH`` is an edge's :class:`Uplink` driven
from stdin, one command a line, one JSON line answered on stdout:
``submit <watchlist> <n>`` (n match events; answers their ids), ``health`` (the
``oneeye.health/1`` it would send now), ``quit`` (closes the uplink, answers its stats).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Prefix that runs a command as nobody (no capabilities: permissions apply).
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


class TinyPartition:
    """A ``size_kb`` tmpfs at ``mount`` in a private mount namespace, for one test."""

    def __init__(self, mount: Path, size_kb: int = 512) -> None:
        self.mount = mount
        mount.mkdir(parents=True, exist_ok=True)
        # The namespace lives as long as this sleeper: every later process joins it.
        self._holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs -o size={size_kb}k,mode=0777 tmpfs '{mount}' && echo ready "
             "&& exec sleep 3600"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline().strip()
        if line != "ready":
            err = self._holder.stderr.read() if self._holder.stderr else ""
            self._holder.kill()
            raise AssertionError(f"could not mount a tmpfs in a mount namespace: {err}")

    def _enter(self) -> list[str]:
        return ["nsenter", "-t", str(self._holder.pid), "-m", "--"]

    def run(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._enter(), *argv], capture_output=True, text=True,
                              timeout=120, **kw)

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen([*self._enter(), *argv], text=True, **kw)

    def fill(self) -> None:
        """Write ``filler.bin`` until the partition is full (dd stops at ENOSPC)."""
        self.run(["dd", "if=/dev/zero", f"of={self.mount}/filler.bin", "bs=4k"])
        df = self.run(["df", "-k", "--output=avail", str(self.mount)]).stdout.split()
        assert df[-1] == "0", f"partition not full: {df}"

    def free(self) -> None:
        self.run(["rm", "-f", f"{self.mount}/filler.bin"])

    def read_only(self, ro: bool = True) -> None:
        out = self.run(["mount", "-o", f"remount,{'ro' if ro else 'rw'}", str(self.mount)])
        assert out.returncode == 0, out.stderr

    def close(self) -> None:
        self._holder.kill()
        self._holder.wait()


class DrivenUplink:
    """A :mod:`tests.storage_support` driver process (inside ``partition`` when given)."""

    def __init__(self, url: str, outbox: Path, *, partition: TinyPartition | None = None,
                 prefix: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        argv = [*(prefix or []), sys.executable, "-m", "tests.storage_support", url, str(outbox)]
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "ONEEYE_EDGE__OUTBOX__RETRY_S": "0.2",
                    **(env or {})}
        kw: dict[str, Any] = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=full_env, cwd=str(REPO))
        self.proc = (partition.popen(argv, **kw) if partition is not None
                     else subprocess.Popen(argv, text=True, **kw))
        self.stderr = ""

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"driver ended (exit {self.proc.returncode}) at {command!r}:"
                                 f"\n{err}")
        return json.loads(line)

    def storage(self) -> dict[str, Any]:
        return dict(self.ask("health")["storage"]["outbox"])

    def quit(self) -> dict[str, Any]:
        stats = dict(self.ask("quit"))
        self.proc.wait(60)
        self.stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return stats


def _main(url: str, outbox: str) -> int:
    from oneeye.edge.comms.health import Vitals
    from oneeye.edge.comms.uplink import Uplink
    from oneeye.edge.settings import EdgeSettings
    from oneeye.events import CameraHealth, MatchEvent
    from oneeye.logs import configure
    from oneeye.types import utc_now

    configure("INFO")
    settings = EdgeSettings.model_validate(
        {"device_id": "edge-disk", "publish": {"url": url, "timeout_s": 2},
         "outbox": {"path": outbox}})
    uplink = Uplink(settings, lambda: Vitals({"cam-1": CameraHealth(state="ok")})).start()
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "submit":
            ids = []
            for i in range(int(args[1])):
                ev = MatchEvent(device_id="edge-disk", site_id="site-1", camera_id="cam-1",
                                observed_at=utc_now(), person_id=f"MP-2026-{i + 1:04d}",
                                watchlist=args[0], distance=0.4, margin=0.3,
                                bbox=(10, 60, 60, 10), track_id=i, frames_seen=3,
                                gallery_version=1)
                uplink.submit(ev)
                ids.append(ev.event_id)
            answer: Any = ids
        elif cmd == "health":
            answer = uplink.health().to_dict()
        elif cmd == "quit":
            stats = uplink.stats()
            uplink.close(timeout=2.0)
            print(json.dumps(stats), flush=True)
            return 0
        else:
            answer = {"error": f"unknown command {cmd}"}
        print(json.dumps(answer), flush=True)
    uplink.close(timeout=2.0)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2]))
