"""Who may see and change what: the dashboard's one tenancy rule.

Sites belong to the bank; cases belong to an agency (by the agency's id, the name its
record in the cloud's agencies table carries). Every view, list, export, audit page and
socket takes its scope from here, and nowhere else:

=================  ==============================  =========================================
role               sees                            may change
=================  ==============================  =========================================
teller             events of their sites           acknowledgements and verdicts there
branch_admin       as teller; bank users whose     tellers whose sites are within their own
                   sites are within their own;     (create, sites, password, remove), only
                   the bank's audit of their       with sites they have themselves; never
                   sites                           themselves, an admin or an officer
agency_admin       their agency's users and audit  their agency's officers (create,
                                                   password, remove); never themselves
agency_officer     their agency's cases            close their agency's cases
operator (CLI)     everything                      creates admins, agencies' users and
                                                   agencies (``oneeye dashboard add-user``,
                                                   ``oneeye agency add``)
=================  ==============================  =========================================

A user record here is the dict the store gives (``{user_id, name, sites, role, agency}``).
Refusals raise :class:`NotAllowed` with a sentence for the person; views turn it into a
403 (or a flash on a form).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from oneeye.errors import NotAllowed
from oneeye.types import AGENCY_ROLES, BANK_ROLES, Role

User = dict[str, Any]


def role_of(user: User | None) -> str:
    return str((user or {}).get("role") or "teller")


def event_sites(user: User | None) -> list[str]:
    """The sites whose events, devices, history and exports ``user`` sees: a bank user's
    own sites; none for agency users (cases are not events of a site)."""
    if user is None or role_of(user) not in BANK_ROLES:
        return []
    return [str(s) for s in user.get("sites") or []]


def scoped(user: User | None) -> User | None:
    """The request's user as every view reads it (``g.user``): ``sites`` are its
    :func:`event_sites`, so a view that filters by ``g.user["sites"]`` is scoped here."""
    if user is None:
        return None
    return {**user, "sites": event_sites(user)}


def audit_scope(user: User) -> dict[str, Any]:
    """Keyword arguments of ``Store.audit.rows`` for ``user``'s audit page: an agency
    user gets their agency's rows; a bank user the bank's rows of their sites and the
    bank's site-less rows; agency rows are never a bank's and bank rows never an agency's."""
    if role_of(user) in AGENCY_ROLES:
        return {"agency": str(user.get("agency") or "")}
    return {"sites": event_sites(user)}


def creatable_roles(actor: User) -> tuple[Role, ...]:
    """The roles ``actor`` may give: a branch admin makes tellers, an agency admin makes
    their agency's officers; only the operator (CLI) makes admins."""
    role = role_of(actor)
    if role == "branch_admin":
        return ("teller",)
    if role == "agency_admin":
        return ("agency_officer",)
    return ()


def may_see(actor: User, target: User) -> bool:
    """True when ``target`` is in ``actor``'s user list: for a branch admin, bank users
    whose sites are all within the admin's; for an agency admin, their agency's users."""
    role = role_of(actor)
    if role == "branch_admin":
        return (role_of(target) in BANK_ROLES
                and set(target.get("sites") or []) <= set(actor.get("sites") or []))
    if role == "agency_admin":
        return role_of(target) in AGENCY_ROLES and target.get("agency") == actor.get("agency")
    return False


def may_manage(actor: User, target: User) -> bool:
    """True when ``actor`` may edit, reset or remove ``target``: one they see, of a role
    they may give, and not themselves."""
    return (may_see(actor, target) and role_of(target) in creatable_roles(actor)
            and target.get("user_id") != actor.get("user_id"))


def visible_users(actor: User, users: Iterable[User]) -> list[User]:
    """``users`` as ``actor``'s users page lists them, each with ``manageable``."""
    return [{**u, "manageable": may_manage(actor, u)} for u in users if may_see(actor, u)]


def grant(actor: User, role: str, sites: Sequence[str]) -> str | None:
    """Check that ``actor`` may give ``role`` with ``sites`` to a user; returns the agency
    the user gets (the actor's own for an agency admin, None for the bank). Raises
    :class:`NotAllowed` for a role they may not give or a site they lack."""
    allowed = creatable_roles(actor)
    if role not in allowed:
        raise NotAllowed(f"you may give only: {', '.join(r.replace('_', ' ') for r in allowed)}"
                         if allowed else "you may not manage users")
    if role_of(actor) == "agency_admin":
        if sites:
            raise NotAllowed("agency users have no sites")
        return str(actor.get("agency") or "") or None
    lacking = sorted(set(sites) - set(actor.get("sites") or []))
    if lacking:
        raise NotAllowed(f"you may only give sites you have yourself, not {', '.join(lacking)}")
    if not sites:
        raise NotAllowed("give at least one of your sites")
    return None


def audit_rows_for(target: User) -> list[dict[str, Any]]:
    """Where a change to ``target`` is audited: one row per site of a bank user (each
    site's admins see it), one of their agency for an agency user."""
    if role_of(target) in AGENCY_ROLES:
        return [{"agency": target.get("agency")}]
    return [{"site_id": s} for s in target.get("sites") or []] or [{}]
