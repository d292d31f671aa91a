"""Server-rendered pages: the live desk, history, the local-mode alert outbox; /healthz."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from dashboard.auth import login_required
from oneeye.types import DESK_KINDS

log = logging.getLogger(__name__)
bp = Blueprint("desk", __name__)
ALERTS_MAX = 200


@bp.get("/")
@login_required
def index() -> str:
    return render_template("desk.html", offline_after_s=current_app.config[
        "ONEEYE_OFFLINE_AFTER_S"])


@bp.get("/history")
@login_required
def history() -> str:
    from dashboard.api import time_arg

    kind = request.args.get("kind") or None
    rows = current_app.extensions["oneeye.store"].events(
        g.user["sites"], person=(request.args.get("person") or "").strip()[:64] or None,
        since=time_arg("since"), until=time_arg("until"),
        kind=kind if kind in DESK_KINDS else None, limit=current_app.config["ONEEYE_HISTORY_LIMIT"])
    return render_template("history.html", events=rows, kinds=DESK_KINDS)


@bp.get("/alerts")
@login_required
def alerts() -> str:
    path: Path | None = current_app.config["ONEEYE_ALERT_OUTBOX_PATH"]
    return render_template("alerts.html", path=path, messages=read_alert_outbox(path))


@bp.get("/outbox")
def outbox() -> WerkzeugResponse:
    """The page's old address (kept for one release)."""
    return redirect(url_for("desk.alerts"), code=308)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        ok = current_app.extensions["oneeye.store"].ping()
    except Exception as exc:  # the point of /healthz is to report, not to raise
        log.warning("healthz: database check failed: %s", exc)
        ok = False
    return jsonify({"status": "ok" if ok else "degraded", "database": ok,
                    "async_mode": current_app.extensions["socketio"].async_mode,
                    "user": g.user["name"] if g.get("user") else None}), 200 if ok else 503


def read_alert_outbox(path: Path | None) -> list[dict[str, Any]]:
    """Newest-first messages from a JSON-lines file or a directory of ``*.json[l]`` files."""
    if path is None or not path.exists():
        return []
    files = sorted(path.glob("*.json*")) if path.is_dir() else [path]
    out: list[dict[str, Any]] = []
    for file in files:
        try:
            lines = file.read_text(errors="replace").splitlines()
        except OSError as exc:
            log.warning("alert outbox: cannot read %s: %s", file, exc)
            continue
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                item = {"body": line, "error": "not JSON"}
            if isinstance(item, dict):
                out.append(item)
    return out[::-1][:ALERTS_MAX]
