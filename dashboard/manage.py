"""Management screens, by role: customers' photos and sites (branch admin), the audit
(branch and agency admins, each their own tenancy's). The users page is
``dashboard.accounts``; the agency officer's cases are :mod:`dashboard.cases`.

Photos go the one way every enrolment goes: into ``uploads/customers/{id}/`` of the
OneEye bucket, where the gallery indexer checks them (no face / two faces / too small /
blurred / unreadable) and writes ``status/{upload_id}.json``; the page polls that and
shows the indexer's own sentence, as the phone page does. The cloud is reached only
through :class:`dashboard.cloud.Cloud`.

A customer id must be in the bank's customer directory (``cloud.customer_api_url``) before
a photo is sent for it; the Customers page lists each customer's name and photos. Removing
photos or a user asks first: the form posts to a confirmation page
(:func:`confirm_first`), and
only the confirmation's own POST (``confirmed=1``) acts, so no inline script is needed.
Sites are picked from the known ones (:func:`known_sites`); a name that is not one is
refused, so a typo cannot make a phantom site.

Every change is an audit row (who, what, when) in the dashboard's store.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import flask
from flask import Blueprint, Response, abort, flash, g, request

from dashboard import tenancy
from dashboard.cloud import Cloud
from dashboard.roles import roles_required
from dashboard.services import services
from oneeye.cloud.uploads import MAX_PHOTO_BYTES
from oneeye.errors import CustomerApiUnavailable, CustomerNotFound

log = logging.getLogger(__name__)
bp = Blueprint("manage", __name__, url_prefix="/manage")


def cloud_or_503() -> Cloud:
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
        upload_id = cloud_or_503().add_customer_photo(customer_id, photo.read() if photo else b"")
    except ValueError as exc:
        return flask.jsonify({"state": "rejected", "reason": "invalid", "message": str(exc)}), 400
    except CustomerApiUnavailable:
        return flask.jsonify({"state": "rejected", "reason": "unavailable", "message":
                              "the customer directory is not answering, so the id cannot be "
                              "checked — nothing was saved; try again in a minute"}), 503
    services().store.audit.add(g.user["name"], "customer_photo_added", customer_id,
                               upload_id=upload_id)
    return flask.jsonify({"upload_id": upload_id, "state": "pending"}), 202


@bp.get("/customers/photos/<id:upload_id>")
@roles_required("branch_admin")
def photo_status(upload_id: str) -> Response:
    status = cloud_or_503().photo_status(upload_id)
    return flask.jsonify({k: status.get(k) for k in ("state", "reason", "message", "person_id",
                                               "gallery_version")})


@bp.get("/customers/photo")
@roles_required("branch_admin")
def customer_photo() -> Response:
    """One enrolment photo (``key``), for the page's thumbnails and to open full size."""
    data = cloud_or_503().photo(request.args.get("key") or "")
    if data is None:
        abort(404)
    kind = "png" if data.startswith(b"\x89PNG") else "jpeg"
    return Response(data, mimetype=f"image/{kind}",
                    headers={"Cache-Control": "private, max-age=300"})


@bp.post("/customers/<id:customer_id>/photos/delete")
@roles_required("branch_admin")
def remove_customer_photo(customer_id: str) -> Any:
    key = request.form.get("key") or ""
    asked = confirm_first(f"Delete this photo of {customer_id}?", "Delete photo",
                     "manage.customers", hidden={"key": key}, photo=key)
    if asked is not None:
        return asked
    try:
        removal = cloud_or_503().remove_customer_photo(customer_id, key)
    except ValueError as exc:
        abort(404, description=str(exc))
    services().store.audit.add(g.user["name"], "customer_photo_removed", customer_id, key=key,
                               removal=removal)
    flash(f"{customer_id}: photo deleted" + ("; it was the last one, so cameras stop "
                                             "recognising them within a minute" if removal else ""))
    return flask.redirect(flask.url_for("manage.customers"))


@bp.get("/customers/<id:customer_id>")
@roles_required("branch_admin")
def customer(customer_id: str) -> str:
    """One customer's page: their name, and every template the cameras match them on
    (photos, confirmed sightings, negatives from "Not this person") with its source, who
    and when, a thumbnail where there is one, and Remove; those held for review with
    Accept / Dismiss."""
    cloud = cloud_or_503()
    try:
        name = (cloud.card(customer_id) or {}).get("name")
    except (CustomerNotFound, CustomerApiUnavailable):
        name = None
    photos = set(cloud.photos_of(customer_id))
    listed = [{**t, "thumbnail": _thumbnail(t, photos)} for t in cloud.templates(customer_id)]
    return flask.render_template("manage/customer.html", customer_id=customer_id, name=name,
                                 templates=listed)


def _thumbnail(template: dict[str, Any], photos: set[str]) -> str | None:
    """The image of a template: a photo's upload (while it is in the bucket), a sighting's
    or negative's event snapshot when this dashboard stored that event at one of the
    admin's sites (the event id is the desk event's); else None."""
    source = str(template.get("source") or "")
    if template.get("kind") == "photo":
        return flask.url_for("manage.customer_photo", key=source) if source in photos else None
    record = services().store.events.get(source) if source else None
    if record is None or record["site_id"] not in g.user["sites"]:
        return None
    url = record["event"].get("snapshot_url")
    return str(url) if url else None


@bp.post("/customers/<id:customer_id>/templates/<id:template_id>/remove")
@roles_required("branch_admin")
def remove_template(customer_id: str, template_id: str) -> Any:
    """Remove one template (asks first); the indexer takes it out of the next gallery."""
    kind = request.form.get("kind") or "template"
    page = flask.url_for("manage.customer", customer_id=customer_id)
    asked = confirm_first(f"Remove this {kind} template of {customer_id}?", "Remove template",
                          page, hidden={"kind": kind},
                          image=request.form.get("thumbnail") or None)
    if asked is not None:
        return asked
    message_id = cloud_or_503().remove_template(customer_id, template_id, g.user["name"])
    services().store.audit.add(g.user["name"], "template_removed", customer_id,
                               template_id=template_id, kind=kind, removal=message_id)
    flash(f"{customer_id}: {kind} template removed; cameras stop using it within a minute")
    return flask.redirect(page)


@bp.post("/customers/<id:customer_id>/templates/<id:review_id>/review")
@roles_required("branch_admin")
def review_template(customer_id: str, review_id: str) -> Any:
    """``decision``: ``accept`` (the held template joins the gallery) or ``dismiss`` (it is
    thrown away; asks first)."""
    said = request.form.get("decision")
    if said not in ("accept", "dismiss"):
        abort(400, description="decision must be accept or dismiss")
    decision: Literal["accept", "dismiss"] = "accept" if said == "accept" else "dismiss"
    page = flask.url_for("manage.customer", customer_id=customer_id)
    if decision == "dismiss":
        asked = confirm_first(f"Dismiss this held template of {customer_id}? It is not learnt.",
                              "Dismiss", page, hidden={"decision": decision})
        if asked is not None:
            return asked
    message_id = cloud_or_503().review_template(customer_id, review_id, decision,
                                                g.user["name"])
    services().store.audit.add(g.user["name"], f"template_{decision}ed",
                               customer_id, review_id=review_id, command=message_id)
    flash(f"{customer_id}: held template " + ("accepted; cameras use it within a minute"
                                              if decision == "accept" else "dismissed"))
    return flask.redirect(page)


@bp.post("/customers/<id:customer_id>/remove")
@roles_required("branch_admin")
def remove_customer(customer_id: str) -> Any:
    asked = confirm_first(f"Remove every photo of {customer_id}? Cameras stop recognising them.",
                     "Remove all photos", "manage.customers")
    if asked is not None:
        return asked
    message_id = cloud_or_503().remove_customer(customer_id)
    services().store.audit.add(g.user["name"], "customer_removed", customer_id,
                               removal=message_id)
    flash(f"{customer_id}: photos deleted; cameras stop recognising them within a minute")
    return flask.redirect(flask.url_for("manage.customers"))


# --- cases (agency officer): dashboard.cases ------------------------------------------------
@bp.get("/cases")
def cases() -> Any:
    """The case list's old address (kept for one release)."""
    return flask.redirect(flask.url_for("cases.index"), code=308)


# --- sites, audit (admins; users: dashboard.accounts) --------------------------------------
def known_sites() -> list[str]:
    """Sites a user may be given: those cameras report from or users already have
    (:meth:`dashboard.store.Store.sites`), and ``known_sites`` of the settings."""
    stored = {str(s["site_id"]) for s in services().store.sites()}
    return sorted(stored | set(services().settings.known_sites))


def confirm_first(question: str, action: str, back: str, *,
                  hidden: dict[str, str] | None = None, photo: str | None = None,
                  image: str | None = None) -> str | None:
    """None when this POST is the confirmation (``confirmed=1``); else the confirmation
    page, whose form posts the same fields again with ``confirmed=1``. ``back`` is an
    endpoint name or a path (``/…``); ``photo`` a customer photo's key, ``image`` any
    other image's URL to show what is about to go."""
    if request.form.get("confirmed") == "1":
        return None
    return flask.render_template("manage/confirm.html", question=question, action=action,
                                 target=request.path, hidden=hidden or {}, photo=photo,
                                 image=image,
                                 back=back if back.startswith("/") else flask.url_for(back))


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
