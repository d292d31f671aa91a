"""The users page: a branch admin's tellers, an agency admin's officers.

Four separate actions, each checked by :mod:`dashboard.tenancy` and audited:

- ``POST /manage/users``: **create** (``name``, ``password``, ``role``, ``sites``). Refuses
  a name that exists: creating is never a way to take over an account. An agency admin's
  officers get the admin's own agency (there is no agency field to type).
- ``POST /manage/users/<user_id>/edit``: the ``sites`` (and ``role``) of a user the admin
  manages.
- ``POST /manage/users/<user_id>/password``: a password reset.
- ``POST /manage/users/<user_id>/delete``: removal.

Users are addressed by their immutable ``user_id``. Editing, a reset and removal end the
user's logins and close their sockets at once (``dashboard.live.Live.end_logins``). A
user outside the admin's tenancy is a 404 (the same answer as none at all); a role or
site the admin may not give is refused with a sentence.
"""

from __future__ import annotations

import logging
from typing import Any

import flask
from flask import Blueprint, abort, flash, g, request

from dashboard import tenancy
from dashboard.auth import hash_password
from dashboard.manage import confirm_first, known_sites
from dashboard.roles import roles_required
from dashboard.services import services
from oneeye.errors import NameTaken, NotAllowed
from oneeye.types import Role, id_refusal

log = logging.getLogger(__name__)
bp = Blueprint("accounts", __name__, url_prefix="/manage/users")
#: Who has a users page (what each may do there is ``dashboard.tenancy``'s).
ADMIN_ROLES: tuple[Role, ...] = ("branch_admin", "agency_admin")


def _sites_field() -> list[str]:
    # the page's multi-select sends one value per site; a script may send "a, b"
    sites = [s.strip() for value in request.form.getlist("sites")
             for s in value.split(",") if s.strip()]
    for site in sites:
        refusal = id_refusal("site", site)
        if refusal is not None:
            raise ValueError(refusal)
    # a typo (site-l) must not make a phantom site: only sites cameras report from, users
    # work at, or the settings' known_sites (a new branch) may be given
    known = known_sites()
    unknown = [s for s in sites if s not in known]
    if unknown:
        abort(400, description=f"unknown site {', '.join(unknown)} — pick one of "
                               f"{', '.join(known) or '(none yet)'}")
    return sites


def _actor() -> dict[str, Any]:
    """The acting admin, unscoped (their own sites, as granted), from the store."""
    actor = services().store.users.by_id(str(g.user["user_id"]))
    if actor is None:  # removed between load_user and here
        abort(403)
    return actor


def _managed(user_id: str) -> dict[str, Any]:
    """The user ``user_id`` if the acting admin may manage them, else 404 (ids of other
    tenants do not leak)."""
    target = services().store.users.by_id(user_id)
    if target is None or not tenancy.may_manage(_actor(), target):
        abort(404, description="no such user among those you manage")
    return target


def _audit(action: str, target: dict[str, Any], **detail: Any) -> None:
    audit = services().store.audit
    for where in tenancy.audit_rows_for(target):
        audit.add(g.user["name"], action, str(target["name"]),
                  user_id=target["user_id"], **where, **detail)


def _ended(login_ids: list[str] | None) -> None:
    if login_ids:
        services().live.end_logins(login_ids)


@bp.get("")
@roles_required(*ADMIN_ROLES)
def users() -> str:
    actor = _actor()
    return flask.render_template(
        "manage/users.html", users=tenancy.visible_users(actor, services().store.users.all()),
        roles=tenancy.creatable_roles(actor), agency_admin=actor["role"] == "agency_admin")


@bp.post("")
@roles_required(*ADMIN_ROLES)
def create() -> Any:
    actor = _actor()
    name = (request.form.get("name") or "").strip()
    role = request.form.get("role") or tenancy.creatable_roles(actor)[0]
    try:
        refusal = id_refusal("user name", name)
        if refusal is not None:
            raise ValueError(refusal)
        sites = _sites_field()
        agency = tenancy.grant(actor, role, sites)
        user_id = services().store.users.create(
            name, hash_password(request.form.get("password") or ""), sites, role=role,
            agency=agency)
    except NotAllowed as exc:
        abort(403, description=str(exc))
    except (ValueError, NameTaken) as exc:
        flash(f"user not created: {exc}")
    else:
        _audit("user_created", {"user_id": user_id, "name": name, "role": role,
                                "sites": sites, "agency": agency}, role=role, sites=sites)
        flash(f"user {name} created ({role.replace('_', ' ')})")
    return flask.redirect(flask.url_for("accounts.users"))


@bp.post("/<id:user_id>/edit")
@roles_required(*ADMIN_ROLES)
def edit(user_id: str) -> Any:
    target = _managed(user_id)
    role = request.form.get("role") or str(target["role"])
    try:
        sites = _sites_field()
        agency = tenancy.grant(_actor(), role, sites)
        ended = services().store.users.edit(user_id, sites=sites, role=role, agency=agency)
    except NotAllowed as exc:
        abort(403, description=str(exc))
    except ValueError as exc:
        flash(f"user not changed: {exc}")
        return flask.redirect(flask.url_for("accounts.users"))
    _ended(ended)
    changed = {**target, "role": role, "sites": sites}
    # audited where the user was and where they are now: both sites' admins see it
    _audit("user_changed", {**changed, "sites": sorted({*target["sites"], *sites})},
           role=role, sites=sites, before=target["sites"])
    flash(f"user {target['name']} changed; their logins ended")
    return flask.redirect(flask.url_for("accounts.users"))


@bp.post("/<id:user_id>/password")
@roles_required(*ADMIN_ROLES)
def reset_password(user_id: str) -> Any:
    target = _managed(user_id)
    try:
        password_hash = hash_password(request.form.get("password") or "")
    except ValueError as exc:
        flash(f"password not reset: {exc}")
        return flask.redirect(flask.url_for("accounts.users"))
    _ended(services().store.users.set_password(user_id, password_hash))
    _audit("password_reset", target)
    flash(f"password of {target['name']} reset; their logins ended")
    return flask.redirect(flask.url_for("accounts.users"))


@bp.post("/<id:user_id>/delete")
@roles_required(*ADMIN_ROLES)
def delete(user_id: str) -> Any:
    target = _managed(user_id)
    asked = confirm_first(f"Remove user {target['name']}? Their logins end now.",
                          "Remove user", "accounts.users")
    if asked is not None:
        return asked
    _ended(services().store.users.remove(user_id))
    _audit("user_removed", target)
    flash(f"user {target['name']} removed; their logins ended")
    return flask.redirect(flask.url_for("accounts.users"))
