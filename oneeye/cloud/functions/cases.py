"""cases: ``GET /api/cases`` and ``POST /api/cases/{case_id}/close`` for agencies.

An agency sees and closes only its own cases (another agency's case is a 404
on close: ids do not leak). Closing sets ``status = closed`` (with
``closed_at`` and ``closed_by``) and sends the removal command
(:class:`~oneeye.cloud.indexer_commands.RemoveCommand` for watchlist ``missing``) to the
indexer queue; the gallery_indexer builds a gallery version without the person
and announces it, so every device stops looking. Closing twice is not an
error: the command is sent again (the indexer answers "absent"), which also
repairs a close whose first send failed after the status was written.
amber_alert already ignores matches on a closed case, so the seconds until the
devices swap galleries send no alerts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from oneeye.cloud.agencies import Agencies, Audit
from oneeye.cloud.api import Request, Response, respond
from oneeye.cloud.dal import store
from oneeye.cloud.indexer_commands import RemoveCommand
from oneeye.cloud.settings import CasesSettings
from oneeye.errors import ApiError
from oneeye.types import is_id, utc_now

log = logging.getLogger(__name__)

_PUBLIC = ("case_id", "name", "age", "description", "contact", "reported_by", "agency",
           "status", "created_at", "opened_at", "updated_at", "closed_at",
           "closed_by", "last_upload_id")


@dataclass(frozen=True)
class CasesDeps:
    cases: store.Cases
    agencies: Agencies
    audit: Audit
    indexer_queue_url: str


def route(req: Request, deps: CasesDeps) -> Response:
    """One function serves both routes of the template."""
    if req.method == "GET" and "case_id" not in req.path_params:
        return list_cases(req, deps)
    if req.method == "POST" and req.path_params.get("case_id") and req.path.endswith("/close"):
        return close_case(req, deps)
    raise ApiError(404, "no_route", f"no route {req.method} {req.path}")


def list_cases(req: Request, deps: CasesDeps) -> Response:
    agency = deps.agencies.authenticate(req)
    wanted = req.query.get("status")
    if wanted not in (None, "", "open", "closed"):
        raise ApiError(400, "invalid_query", "status must be open or closed")
    items = deps.cases.scan(agency=agency.name)
    if wanted:
        items = [c for c in items if c.get("status") == wanted]
    items.sort(key=lambda c: str(c.get("created_at", "")), reverse=True)
    return respond(200, {"agency": agency.name,
                         "cases": [{k: c[k] for k in _PUBLIC if k in c} for c in items]})


def close_case(req: Request, deps: CasesDeps) -> Response:
    agency = deps.agencies.authenticate(req)
    case_id = req.path_params.get("case_id", "")
    if not is_id(case_id):
        raise ApiError(404, "not_found", f"no case {case_id[:64]!r}")
    case = deps.cases.get(case_id)
    if case is None or case.get("agency") != agency.name:
        raise ApiError(404, "not_found", f"no case {case_id} for {agency.name}")
    case, was, message_id = close(deps.cases, deps.indexer_queue_url, case_id,
                                  closed_by=agency.name)
    deps.audit.record("case_closed", agency, req, case_id=case_id, was=was,
                      removal_message_id=message_id)
    log.info("case %s closed by %s; removal queued (%s)", case_id, agency.name, message_id)
    return respond(200, {"case_id": case_id, "status": "closed",
                         "closed_at": case.get("closed_at"), "removal": "queued",
                         "already_closed": was == "closed"})


def close(cases: store.Cases, indexer_queue_url: str, case_id: str, *,
          closed_by: str) -> tuple[dict[str, Any], str | None, str]:
    """Close ``case_id`` (if open) and queue its removal from the missing gallery.

    Returns the case after, its status before, and the removal's SQS message id. The
    caller has checked that ``closed_by`` may close it (the API: the owning agency's
    token; the dashboard: an officer of that agency).
    """
    case = cases.get(case_id) or {}
    was = case.get("status")
    if was != "closed":
        case = cases.upsert(case_id, {"status": "closed", "closed_at": utc_now(),
                                      "closed_by": closed_by})
    command = RemoveCommand(watchlist="missing", person_id=case_id)
    message_id = store.send(indexer_queue_url, command.to_json())
    return case, was, message_id


def cases_deps(settings: CasesSettings) -> CasesDeps:
    return CasesDeps(cases=store.Cases(settings.cases_table),
                     agencies=Agencies(settings.agencies_table),
                     audit=Audit(store.Bucket(settings.oneeye_bucket)),
                     indexer_queue_url=settings.indexer_queue_url)


def cases_from_env() -> CasesDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return cases_deps(CasesSettings.from_env(root="cases"))
