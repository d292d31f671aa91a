"""Server-rendered pages: the live desk, history, the local-mode outbox; /healthz."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request

from dashboard.auth import login_required

log = logging.getLogger(__name__)
bp = Blueprint("desk", __name__)
OUTBOX_MAX = 200


@bp.get("/")
@login_required
def index() -> str:
    return render_template("desk.html", offline_after_s=current_app.config[
        "ONEEYE_OFFLINE_AFTER_S"])


@bp.get("/history")
@login_required
def history() -> str:
    from dashboard.api import KINDS, time_arg

    kind = request.args.get("kind") or None
    rows = current_app.extensions["oneeye.store"].events(
        g.user["sites"], person=(request.args.get("person") or "").strip()[:64] or None,
        since=time_arg("since"), until=time_arg("until"),
        kind=kind if kind in KINDS else None, limit=current_app.config["ONEEYE_HISTORY_LIMIT"])
    return render_template("history.html", events=rows, kinds=KINDS)


@bp.get("/outbox")
@login_required
def outbox() -> str:
    path: Path | None = current_app.config["ONEEYE_OUTBOX_PATH"]
    return render_template("outbox.html", path=path,
                           messages=read_outbox(path, g.user["sites"]))


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


def read_outbox(path: Path | None, sites: Sequence[str]) -> list[dict[str, Any]]:
    """Newest-first messages of ``sites`` from a JSON-lines file or a directory of them.

    A line shows only if its ``site_id`` is one of ``sites``: alerts carry names,
    contacts and snapshot links, and a line that names no site (or is not JSON)
    cannot be shown to anyone safely, so it is left to ``oneeye outbox`` on the host.
    """
    if path is None or not path.exists():
        return []
    files = sorted(path.glob("*.json*")) if path.is_dir() else [path]
    out: list[dict[str, Any]] = []
    for file in files:
        try:
            lines = file.read_text(errors="replace").splitlines()
        except OSError as exc:
            log.warning("outbox: cannot read %s: %s", file, exc)
            continue
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and item.get("site_id") in sites:
                out.append(item)
    return out[::-1][:OUTBOX_MAX]
