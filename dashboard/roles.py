"""Who may open what: roles on top of the login (``oneeye.types.Role``).

- ``teller``: the desk, history and person pages of their sites;
- ``branch_admin``: also customers' photos, users, sites and the false-match counts;
- ``agency_admin``: their agency's officers and audit — no bank pages;
- ``agency_officer``: the cases of their own agency (list, close) — no bank pages.

What each may see and change *within* a page (sites, agencies, users) is
``dashboard.tenancy``'s.

A page a role may not open is a 403 with a sentence saying who may; the management
links are only shown to roles that can use them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import abort, g

from dashboard.auth import login_required
from dashboard.tenancy import role_of
from oneeye.types import BANK_ROLES, Role

F = TypeVar("F", bound=Callable[..., Any])

#: Roles that see the bank's desk (events of their sites).
DESK_ROLES: tuple[Role, ...] = BANK_ROLES


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
