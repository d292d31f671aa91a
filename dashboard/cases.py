"""The agency officer's side: Cases (their home), one case's story, closing a case.

- ``GET /cases`` — the agency's cases (from the cloud case table) with how often and where
  each was seen (the dashboard's stored sightings);
- ``GET /cases/<case_id>`` and ``GET /api/cases/<case_id>`` — one case: every sighting at
  every site (camera crop, site, camera, time, strength, who acknowledged, verdicts, who was
  told), and its status history pending → open → closed with who and when;
- ``POST /cases/<case_id>/close`` — close it: the cloud case is closed and its removal
  queued (``oneeye.cloud.backoffice``), the change is recorded here (``case_history``), and
  every desk that shows its banner is told (``case_closed``), live and after a reload.

Scope: an agency's scope is its cases across sites (:func:`dashboard.roles.agency_of`,
the one check); another agency's case id is a 404, exactly like one that does not exist.
The page updates live in the agency's Socket.IO room (:mod:`dashboard.live`).
"""

from __future__ import annotations

import logging
from typing import Any

import flask
from flask import Blueprint, Response, abort, flash, g

from dashboard.api import present
from dashboard.localtime import viewer_zone
from dashboard.manage import cloud_or_503
from dashboard.roles import agency_of, roles_required
from dashboard.services import services
from oneeye.alerting import told_entry_text

log = logging.getLogger(__name__)
bp = Blueprint("cases", __name__)
#: The case fields the page and the API show (never the photo keys or the told list raw).
PUBLIC = ("case_id", "name", "age", "description", "contact", "reported_by", "agency",
          "status", "time_zone", "created_at", "opened_at", "closed_at", "closed_by",
          "photos", "photo_warning")


@bp.app_template_filter("told_words")
def _told_words(entry: dict[str, Any]) -> str:
    return told_entry_text(entry)


def _agency() -> str:
    agency = agency_of(g.user)
    if agency is None:  # an officer saved without an agency (the store refuses that now)
        abort(403, description="your user names no agency; ask a branch admin to set it")
    return agency


@bp.get("/cases")
@roles_required("agency_officer")
def index() -> str:
    agency = _agency()
    parts = services()
    seen = parts.store.cases.summary(agency)
    listing = parts.cloud.cases(agency) if parts.cloud.connected else [
        {"case_id": c, "status": "open"} for c in sorted(seen)]
    return flask.render_template("cases.html", cases=listing, seen=seen, agency=agency,
                                 connected=parts.cloud.connected)


def story(case_id: str, agency: str) -> dict[str, Any] | None:
    """One case of ``agency``: ``{case, sightings, history}``; None when the agency has no
    such case (another agency's case included).

    ``sightings`` are stored records, newest first, each with ``told`` (its
    ``case.told`` entries); ``history`` is ``[{status, by, at}]``, oldest first.
    """
    parts = services()
    case = parts.cloud.case(case_id, agency) if parts.cloud.connected else None
    sightings = [present(r) for r in parts.store.cases.sightings(agency, case_id)]
    recorded = parts.store.cases.history(case_id, agency)
    if case is None and not sightings and not recorded:
        return None
    case = case or {"case_id": case_id, "agency": agency, "status": _latest(recorded)}
    return {"case": {k: case[k] for k in PUBLIC if k in case},
            "sightings": [{**r, "told": (r["event"].get("case") or {}).get("told") or []}
                          for r in sightings],
            "history": status_history(case, recorded)}


def _latest(recorded: list[dict[str, Any]]) -> str:
    return str(recorded[-1]["status"]) if recorded else "open"


def status_history(case: dict[str, Any], recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pending (reported) → open (a photo accepted) → closed, with who and when: the cloud
    record's times and the changes this dashboard recorded (who closed it, by name)."""
    steps: list[dict[str, Any]] = []
    if case.get("created_at"):
        steps.append({"status": "pending", "by": case.get("reported_by") or case.get("agency"),
                      "at": case["created_at"], "what": "reported"})
    if case.get("opened_at"):
        steps.append({"status": "open", "by": "photo accepted", "at": case["opened_at"],
                      "what": "cameras looking"})
    steps += [{**r, "what": "closed" if r["status"] == "closed" else r["status"]}
              for r in recorded]
    if case.get("status") == "closed" and not any(r["status"] == "closed" for r in recorded):
        steps.append({"status": "closed", "by": case.get("closed_by"),
                      "at": case.get("closed_at"), "what": "closed"})
    return sorted(steps, key=lambda s: str(s.get("at") or ""))


def _story_or_404(case_id: str) -> dict[str, Any]:
    found = story(case_id, _agency())
    if found is None:
        abort(404, description=f"no case {case_id} for your agency")
    return found


@bp.get("/cases/<id:case_id>")
@roles_required("agency_officer")
def page(case_id: str) -> str:
    return flask.render_template("case.html", zone=viewer_zone().key,
                                 **_story_or_404(case_id))


@bp.get("/api/cases/<id:case_id>")
@roles_required("agency_officer")
def api_case(case_id: str) -> Response:
    return flask.jsonify(_story_or_404(case_id))


@bp.post("/cases/<id:case_id>/close")
@roles_required("agency_officer")
def close(case_id: str) -> Any:
    """Close the case in the cloud, record who and when, and tell every desk showing it."""
    agency = _agency()
    user = str(g.user["name"])
    if not cloud_or_503().close_case(case_id, agency, user):
        abort(404, description=f"no case {case_id} for your agency")
    parts = services()
    change = parts.store.cases.record_status(case_id, agency, "closed", user)
    parts.store.audit.add(user, "case_closed", case_id, agency=agency)
    for site in parts.store.cases.sites_of(case_id):
        parts.live.emit("case_closed", {**change, "site_id": site})
    parts.live.emit("case_closed", change, agency=agency)
    log.info("case %s closed by %s of %s", case_id, user, agency)
    flash(f"case {case_id} closed; cameras stop looking within a minute")
    return flask.redirect(flask.url_for("cases.page", case_id=case_id))
