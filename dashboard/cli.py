"""``oneeye dashboard run`` and ``oneeye dashboard add-user``.

The ``oneeye`` CLI finds this group through the ``oneeye.commands`` entry point (see
``oneeye.cli``), so the shared ``oneeye`` package never imports the dashboard.

Settings come from ``--config`` (YAML/JSON), then ``ONEEYE_DASHBOARD__KEY=value``
environment variables, then flags. ``run`` serves HTTP and Socket.IO with gevent's
WSGI server (``async_mode``), over HTTPS itself with ``tls_cert``/``tls_key`` or
behind a TLS-terminating proxy named in ``trusted_proxies`` (session cookies are
Secure by default), with ``--message-queue redis://…`` when more than one process
serves the same users.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import click

from dashboard import create_app, run_server
from dashboard.auth import hash_password
from dashboard.cloud import Cloud
from dashboard.settings import DashboardSettings
from dashboard.store import open_store
from oneeye.amber_client import load_stack
from oneeye.config import load_settings
from oneeye.errors import ConfigError, OneEyeError
from oneeye.types import AGENCY_ROLES, ROLES, is_id

log = logging.getLogger(__name__)


def load(config: Path | None, **overrides: Any) -> DashboardSettings:
    """Settings from ``config``, then ``ONEEYE_DASHBOARD__…`` variables, then ``overrides``
    (None values are ignored)."""
    return load_settings(DashboardSettings, path=config, env_prefix="ONEEYE_DASHBOARD",
                         overrides=overrides, root="dashboard")


_config = click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                       help="Settings file (YAML or JSON).")
_db = click.option("--database-url", default=None,
                   help="sqlite:///path or postgresql://… (default: SQLite under var/).")


@click.group("dashboard")
def dashboard_group() -> None:
    """The teller desk dashboard (Flask-SocketIO)."""


@dashboard_group.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@_config
@_db
@click.option("--message-queue", default=None, help="redis://host:port/db to share "
              "Socket.IO broadcasts between several dashboard processes.")
@click.option("--allow-topic", "allow_topics", multiple=True,
              help="SNS topic ARN accepted on /sns (repeatable; adds to the settings).")
@click.option("--insecure-cookies", is_flag=True,
              help="Send the session cookie over plain http (local use only).")
@click.option("--async-mode", type=click.Choice(["threading", "gevent"]), default=None,
              help="Server model (default from settings: gevent, the production server; "
              "threading: Werkzeug's development server).")
def run(host: str, port: int, config: Path | None, database_url: str | None,
        message_queue: str | None, allow_topics: tuple[str, ...],
        insecure_cookies: bool, async_mode: str | None) -> None:
    """Serve the dashboard."""
    settings = load(config, database_url=database_url, message_queue=message_queue,
                    session_cookie_secure=False if insecure_cookies else None,
                    async_mode=async_mode)
    _check_port(host, port)  # one clear line before anything starts (or re-executes)
    if settings.async_mode == "gevent" and not _gevent_patched():
        # patching must come first in a fresh interpreter (see .serve_gevent)
        args = sys.argv[1:]
        if "--async-mode" not in args:
            args += ["--async-mode", "gevent"]
        os.execv(sys.executable, [sys.executable, "-m", "oneeye.commands.serve_gevent", *args])
    if allow_topics:
        settings.allowed_topics = [*settings.allowed_topics, *allow_topics]
    try:
        app = create_app(settings)
    except OSError as exc:
        raise ConfigError(f"cannot start the dashboard: {exc}") from exc
    log.info("dashboard on %s://%s:%d (database %s, message queue %s)",
             "https" if settings.tls_cert else "http", host, port,
             settings.resolved_database_url().split("@")[-1], settings.message_queue or "none")
    try:
        run_server(app, host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _check_port(host: str, port: int) -> None:
    """Fail with one clear line (the same in both async modes) when the port is taken."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port,
                                                          type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(addr)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _gevent_patched() -> bool:
    try:
        from gevent import monkey  # lazy: gevent is optional, and only this mode needs it
    except ImportError as exc:
        raise ConfigError("async_mode gevent needs the gevent package "
                          "(pip install 'oneeye[gevent]')") from exc
    return bool(monkey.is_module_patched("socket"))


def _stack_config(config: Path | None, database_url: str | None,
                  stack_file: Path | None) -> Path | None:
    """The running local stack's dashboard settings file, when nothing else names a
    database (no ``--config``, ``--database-url`` or ``ONEEYE_DASHBOARD__DATABASE_URL``);
    None otherwise or when no stack is found."""
    if config or database_url or os.environ.get("ONEEYE_DASHBOARD__DATABASE_URL") \
            or os.environ.get("ONEEYE_DASHBOARD__VAR_DIR"):
        return None
    try:
        info = load_stack(stack_file)
    except OneEyeError as exc:
        raise click.UsageError(str(exc)) from exc
    found = info.get("dashboard_config")
    if not isinstance(found, str) or not Path(found).is_file():
        return None
    click.echo(f"using the local stack's dashboard ({found})", err=True)
    return Path(found)


@dashboard_group.command("add-user")
@click.argument("name")
@click.option("--site", "sites", multiple=True,
              help="Site the user may see (repeatable; required for bank roles, none for "
                   "agency roles).")
@click.option("--role", type=click.Choice(ROLES), default="teller", show_default=True,
              help="teller: desk and history; branch_admin: also customers, their sites' "
                   "tellers, sites, audit; agency_admin: their agency's officers and audit; "
                   "agency_officer: their agency's cases.")
@click.option("--agency", default=None,
              help="The agency of an agency_admin/agency_officer: an agency id the cloud "
                   "knows (`oneeye agency add`; checked against cloud.agencies_table).")
@click.option("--reset-existing", is_flag=True,
              help="If NAME exists, set its password, role, sites and agency (ending its "
                   "logins) instead of refusing.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@_config
@_db
@click.option("--stack-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Local stack info (default var/local/stack.json): without --config or "
                   "--database-url, the running local stack's dashboard database is used.")
def add_user(name: str, sites: tuple[str, ...], role: str, agency: str | None,
             reset_existing: bool, password_stdin: bool, config: Path | None,
             database_url: str | None, stack_file: Path | None) -> None:
    """Create a dashboard user (the operator's command: the only way to make admins and
    agency users). An existing NAME is refused unless --reset-existing.

    The database is the one of ``--config``/``--database-url``/``ONEEYE_DASHBOARD__…``;
    without any of them, the running local stack's (found as ``oneeye case list`` finds
    the stack), else SQLite under ``var/dashboard``."""
    if not sites and role not in AGENCY_ROLES:
        raise click.BadParameter("give at least one --site", param_hint="--site")
    for site in sites:
        if not is_id(site):
            raise click.BadParameter(f"{site!r} is not a valid site id", param_hint="--site")
    if not is_id(name):
        raise click.BadParameter("a user name is an id: letters, digits and _.:@- (max 128)",
                                 param_hint="NAME")
    settings = load(config or _stack_config(config, database_url, stack_file),
                    database_url=database_url)
    if role in AGENCY_ROLES:
        agency = _known_agency(settings, agency)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Repeat: ") != password:
            raise click.UsageError("passwords differ")
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    store = open_store(settings.resolved_database_url())
    try:
        existing = store.users.get(name)
        if existing is None:
            store.users.create(name, password_hash, list(sites), role=role, agency=agency)
        elif not reset_existing:
            raise click.UsageError(f"a user named {name} exists; --reset-existing to set "
                                   "its password, role and sites")
        else:
            store.users.edit(existing["user_id"], sites=list(sites), role=role, agency=agency)
            store.users.set_password(existing["user_id"], password_hash)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    where = f"agency {agency}" if role in AGENCY_ROLES else f"sites: {', '.join(sites)}"
    click.echo(f"user {name} ({role}) {'reset' if existing else 'created'}; {where}")


def _known_agency(settings: DashboardSettings, agency: str | None) -> str:
    """``agency`` if the cloud's agencies table lists it (an agency user's agency comes
    from the agency's record, never free text)."""
    if not agency:
        raise click.BadParameter("an agency user needs --agency", param_hint="--agency")
    try:
        known = Cloud.from_settings(settings).agencies()
    except ValueError as exc:
        raise click.UsageError(f"cannot check the agency: {exc}") from exc
    if agency not in known:
        raise click.BadParameter(
            f"no agency {agency!r} in the cloud (add it with `oneeye agency add`); known: "
            f"{', '.join(known) or 'none'}", param_hint="--agency")
    return agency
