"""Who may open what: roles on top of the login (``oneeye.types.Role``).

- ``teller``: the desk, history and person pages of their sites;
- ``branch_admin``: also customers' photos, users, sites and the false-match counts;
- ``agency_admin``: their agency's officers and audit — no bank pages;
- ``agency_officer``: the cases of their own agency (list, close) — no bank pages.

A page a role may not open is a 403 with a sentence saying who may, on a page that keeps
the navigation and links the pages the user can open (:func:`pages_of`); the management
links are only shown to roles that can use them. Each role lands on its home after login
(:func:`home_of`).

What each may see and change *within* a page (sites, agencies, users) is
``dashboard.tenancy``'s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import abort, g

from dashboard.auth import home_of, login_required
from dashboard.tenancy import role_of
from oneeye.types import AGENCY_ROLES, BANK_ROLES, Role

__all__ = ["DESK_ROLES", "agency_of", "home_of", "pages_of", "role_of", "roles_required"]

F = TypeVar("F", bound=Callable[..., Any])

#: Roles that see the bank's desk (events of their sites).
DESK_ROLES: tuple[Role, ...] = BANK_ROLES


def agency_of(user: dict[str, Any] | None) -> str | None:
    """The agency whose cases ``user`` may see (an officer's; None for bank users).

    The one scope check of the agency side: an agency's scope is its cases across sites,
    a bank user's stays their sites.
    """
    if role_of(user) not in AGENCY_ROLES:
        return None
    agency = (user or {}).get("agency")
    return str(agency) if agency else None


def pages_of(user: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``(path, label)`` of the pages ``user`` may open (an error page offers them)."""
    if user is None:
        return [("/login", "Log in")]
    role = role_of(user)
    if role == "agency_officer":
        return [("/cases", "Cases"), ("/alerts", "Alerts")]
    if role == "agency_admin":
        return [("/cases", "Cases"), ("/manage/users", "Users"), ("/manage/audit", "Audit"),
                ("/alerts", "Alerts")]
    pages = [("/", "Desk"), ("/history", "History"), ("/history/cameras", "Cameras")]
    if role == "branch_admin":
        pages += [("/manage/customers", "Customers"), ("/manage/users", "Users"),
                  ("/manage/sites", "Sites"), ("/manage/audit", "Audit")]
    return [*pages, ("/alerts", "Alerts")]


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Login first, then one of ``roles``, else 403."""
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if role_of(g.user) not in roles:
                who = ", ".join(r.replace("_", " ") for r in roles)
                abort(403, description=f"this page is for: {who}")
            return view(*args, **kwargs)
        return login_required(cast(F, wrapped))
    return decorate
