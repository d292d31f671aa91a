"""Processes for tests: is one still running, and a rules worker that blocks on demand.

Test-only code: it lives here, not in the shipped ``oneeye`` package.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from oneeye.local.inbox import Inbox

TOPIC = "oneeye/devices/d/matches"

#: A one-function template: every message on TOPIC goes to fn/app.py's handler, which
#: records ``n`` in ``handled/`` or, for ``"block": true``, waits on a lock forever
#: (noting it in ``blocked/``), as a handler stuck on a lock or a socket would.
TEMPLATE = f"""Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Events:
        Matches:
          Type: IoTRule
          Properties:
            Sql: "SELECT * FROM '{TOPIC}'"
"""
HANDLER = """import pathlib, threading
HERE = pathlib.Path(__file__).resolve().parent.parent
def handler(event, context):
    if event.get("block"):
        (HERE / "blocked" / str(event["n"])).touch()
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()  # never returns
    (HERE / "handled" / str(event["n"])).touch()
"""


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie nobody reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # Linux: "pid (comm) S …"; elsewhere kill(0) is all there is
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return not sys.platform.startswith("linux")


class RulesWorkerDir:
    """A ``var_dir`` and config for ``python -m oneeye.local.workers rules``, with
    messages ``n`` in its inbox (``blocking`` ones make the handler wait forever)."""

    def __init__(self, root: Path, desk_queue_url: str = "http://127.0.0.1:9/unused") -> None:
        self.root = root
        for sub in ("fn", "handled", "blocked", "var"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "fn" / "app.py").write_text(HANDLER)
        (root / "template.yaml").write_text(TEMPLATE)
        self.config = root / "workers.json"
        self.config.write_text(json.dumps({
            "var_dir": str(root / "var"), "template": str(root / "template.yaml"),
            "region": "us-east-1", "desk_queue_url": desk_queue_url,
            "confirm_base_url": "http://127.0.0.1:9"}))
        self.inbox_path = root / "var" / "rules-inbox.sqlite3"

    def put(self, quick: range, blocking: range) -> None:
        inbox = Inbox(self.inbox_path)
        for n in [*quick, *blocking]:
            inbox.put(TOPIC, json.dumps({"n": n, "block": n in blocking}).encode())
        inbox.close()

    def argv(self, worker: str = "rules") -> list[str]:
        return [sys.executable, "-m", "oneeye.local.workers", worker, str(self.config)]

    def handled(self) -> set[int]:
        return {int(p.name) for p in (self.root / "handled").iterdir()}

    def blocked(self) -> set[int]:
        return {int(p.name) for p in (self.root / "blocked").iterdir()}

    def waiting(self) -> set[int]:
        """The ``n`` of every message still in the inbox."""
        inbox = Inbox(self.inbox_path)
        try:
            return {json.loads(payload)["n"] for _, _, payload in inbox.after(0, 1000)}
        finally:
            inbox.close()
