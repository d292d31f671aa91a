"""Management screens, by role: customers' photos and sites (branch admin), the audit
(branch and agency admins, each their own tenancy's), cases (agency officer, own agency
only). The users page is ``dashboard.accounts``.

Photos go the one way every enrolment goes: into ``uploads/customers/{id}/`` of the
OneEye bucket, where the gallery indexer checks them (no face / two faces / too small /
blurred / unreadable) and writes ``status/{upload_id}.json``; the page polls that and
shows the indexer's own sentence, as the phone page does. Closing a case uses
``oneeye.cloud.backoffice`` (status closed + removal command to the indexer), the one
way the dashboard reaches the cloud.

Every change is an audit row (who, what, when) in the dashboard's store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import flask
from flask import Blueprint, Response, abort, flash, g, request

from dashboard import tenancy
from dashboard.roles import roles_required
from dashboard.services import services
from dashboard.settings import CloudSettings, DashboardSettings
from oneeye.cloud.backoffice import Backoffice
from oneeye.types import id_refusal

log = logging.getLogger(__name__)
bp = Blueprint("manage", __name__, url_prefix="/manage")
MAX_PHOTO_BYTES = 10 * 1024 * 1024
_MAGIC = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png"}


@dataclass(frozen=True)
class Cloud:
    """The cloud resources of the management screens (``DashboardSettings.cloud``)."""

    settings: CloudSettings

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> Cloud:
        return cls(settings.cloud)

    @property
    def connected(self) -> bool:
        return bool(self.settings.bucket and self.settings.cases_table
                    and self.settings.indexer_queue_url)

    def _backoffice(self) -> Backoffice:
        return Backoffice(bucket=self.settings.bucket, cases_table=self.settings.cases_table,
                          indexer_queue_url=self.settings.indexer_queue_url,
                          agencies_table=self.settings.agencies_table)

    def agencies(self) -> list[str]:
        """The ids of the cloud's agencies (``Backoffice.agencies``); ValueError without
        ``cloud.agencies_table``."""
        return self._backoffice().agencies()

    def add_customer_photo(self, customer_id: str, data: bytes) -> str:
        """Put one photo where the indexer enrols it; return its upload id (the key of its
        verdict). Raises ValueError for what is not a JPEG/PNG photo of a valid id."""
        refusal = id_refusal("customer id", customer_id)
        if refusal is not None:
            raise ValueError(refusal)
        if not data:
            raise ValueError("the file is empty")
        if len(data) > MAX_PHOTO_BYTES:
            raise ValueError("file too large — use a photo under 10 MB")
        ext = next((e for magic, e in _MAGIC.items() if data.startswith(magic)), None)
        if ext is None:
            raise ValueError("not a JPEG or PNG photo")
        return self._backoffice().add_customer_photo(customer_id, data, ext)

    def photo_status(self, upload_id: str) -> dict[str, Any]:
        return self._backoffice().photo_status(upload_id)

    def customers(self) -> list[dict[str, Any]]:
        """Customers with photos in the bucket: ``{customer_id, photos}``."""
        counts = self._backoffice().customer_photos()
        return [{"customer_id": c, "photos": n} for c, n in sorted(counts.items())]

    def remove_customer(self, customer_id: str) -> str:
        """Delete the customer's photos and queue their removal from the gallery."""
        return self._backoffice().remove_customer(customer_id)

    def cases(self, agency: str) -> list[dict[str, Any]]:
        """The agency's cases, newest first, each with its ``photos`` count."""
        return self._backoffice().agency_cases(agency)

    def close_case(self, case_id: str, agency: str, user: str) -> bool:
        """Close a case of ``agency``; False when it has no such case (ids do not leak)."""
        return self._backoffice().close_case(case_id, agency, closed_by=f"{agency}/{user}")


def _cloud() -> Cloud:
    cloud = services().cloud
    if not cloud.connected:
        abort(503, description="the dashboard is not connected to the cloud (settings: "
                               "cloud.bucket, cloud.cases_table, cloud.indexer_queue_url)")
    return cloud


# --- customers (branch admin) ---------------------------------------------------------
@bp.get("/customers")
@roles_required("branch_admin")
def customers() -> str:
    cloud = services().cloud
    listing = cloud.customers() if cloud.connected else []
    return flask.render_template("manage/customers.html", customers=listing,
                           connected=cloud.connected)


@bp.post("/customers/photos")
@roles_required("branch_admin")
def add_photo() -> tuple[Response, int]:
    """multipart ``customer_id`` + ``photo`` → ``{upload_id}`` (202); the page then polls
    :func:`photo_status` for the indexer's verdict."""
    # phone photos are megabytes: this route alone takes up to the indexer's limit
    request.max_content_length = MAX_PHOTO_BYTES + 64 * 1024
    customer_id = (request.form.get("customer_id") or "").strip()
    photo = request.files.get("photo")
    try:
        upload_id = _cloud().add_customer_photo(customer_id, photo.read() if photo else b"")
    except ValueError as exc:
        return flask.jsonify({"state": "rejected", "reason": "invalid", "message": str(exc)}), 400
    services().store.audit.add(g.user["name"], "customer_photo_added", customer_id,
                               upload_id=upload_id)
    return flask.jsonify({"upload_id": upload_id, "state": "pending"}), 202


@bp.get("/customers/photos/<id:upload_id>")
@roles_required("branch_admin")
def photo_status(upload_id: str) -> Response:
    status = _cloud().photo_status(upload_id)
    return flask.jsonify({k: status.get(k) for k in ("state", "reason", "message", "person_id",
                                               "gallery_version")})


@bp.post("/customers/<id:customer_id>/remove")
@roles_required("branch_admin")
def remove_customer(customer_id: str) -> Any:
    message_id = _cloud().remove_customer(customer_id)
    services().store.audit.add(g.user["name"], "customer_removed", customer_id,
                               removal=message_id)
    flash(f"{customer_id}: photos deleted; cameras stop recognising them within a minute")
    return flask.redirect(flask.url_for("manage.customers"))


# --- cases (agency officer) ---------------------------------------------------------------
@bp.get("/cases")
@roles_required("agency_officer")
def cases() -> str:
    agency = str(g.user["agency"])
    return flask.render_template("manage/cases.html", cases=_cloud().cases(agency), agency=agency)


@bp.post("/cases/<id:case_id>/close")
@roles_required("agency_officer")
def close_case(case_id: str) -> Any:
    agency = str(g.user["agency"])
    if not _cloud().close_case(case_id, agency, g.user["name"]):
        abort(404, description=f"no case {case_id[:64]} for {agency}")
    services().store.audit.add(g.user["name"], "case_closed", case_id, agency=agency)
    flash(f"case {case_id} closed; cameras stop looking within a minute")
    return flask.redirect(flask.url_for("manage.cases"))


# --- sites, audit (admins; users: dashboard.accounts) --------------------------------------
@bp.get("/sites")
@roles_required("branch_admin")
def sites() -> str:
    mine = set(g.user["sites"])
    return flask.render_template("manage/sites.html", sites=[
        s for s in services().store.sites() if s["site_id"] in mine])


@bp.get("/audit")
@roles_required("branch_admin", "agency_admin")
def audit() -> str:
    """The audit trail of the admin's tenancy (``dashboard.tenancy.audit_scope``: a bank
    admin's sites, an agency admin's agency) and the false-match counts to tune on."""
    return flask.render_template("manage/audit.html",
                           rows=services().store.audit.rows(**tenancy.audit_scope(g.user)),
                           rejections=services().store.verdicts.rejection_counts(
                               g.user["sites"]))
