"""Who may see and change what (``dashboard/tenancy.py``), and sessions that end when the
account changes.

Users are made the operator's way (``oneeye dashboard add-user``); admins act through the
users page as a browser does: the forms a row shows are the actions they have, and the
attacks of issue 21 are the same requests a branch admin could type. Sockets are real
Socket.IO clients against the app served on a loopback port.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from dashboard.services import services_of
from oneeye.cli import cli
from oneeye.cloud.agencies import Agencies
from tests.dashboard_helpers import PASSWORD, Signer, csrf_from, desk_event, login, post_sns
from tests.wait import wait_until

NEW_PASSWORD = "a new password of theirs"


@pytest.fixture
def desk_users() -> dict[str, list[str]]:
    return {}  # every user here is the operator's (add-user), named by their tenancy


def operator_adds(app: Flask, name: str, *args: str, config: Path | None = None) -> None:
    """``oneeye dashboard add-user NAME ARGS…`` on the app's database, password PASSWORD."""
    where = (["--config", str(config)] if config else
             ["--database-url", services_of(app).settings.resolved_database_url()])
    result = CliRunner().invoke(cli, ["dashboard", "add-user", name, *args, "--password-stdin",
                                      *where], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output


@pytest.fixture
def bank(app: Flask) -> Flask:
    """Two branches: ada1 admin of site-1 (teller alice1), ada2 admin of site-2 (teller
    bob2), and ada12, admin of both (teller carol12 works at both)."""
    operator_adds(app, "ada1", "--site", "site-1", "--role", "branch_admin")
    operator_adds(app, "ada2", "--site", "site-2", "--role", "branch_admin")
    operator_adds(app, "ada12", "--site", "site-1", "--site", "site-2", "--role", "branch_admin")
    operator_adds(app, "alice1", "--site", "site-1")
    operator_adds(app, "bob2", "--site", "site-2")
    operator_adds(app, "carol12", "--site", "site-1", "--site", "site-2")
    return app


def operator_config(app: Flask, cloud_env: dict[str, str], tmp_path: Path) -> Path:
    """The app's settings with the cloud's agencies table: what add-user checks against."""
    config = tmp_path / "operator.json"
    settings = services_of(app).settings
    config.write_text(settings.model_copy(update={"cloud": settings.cloud.model_copy(
        update={"agencies_table": cloud_env["AGENCIES_TABLE"]})}).model_dump_json())
    return config


def logged_in(app: Flask, name: str, password: str = PASSWORD) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert login(client, name, password).status_code == 302, name
    return client, csrf_from(client.get("/login").get_data(as_text=True))


def can_log_in(app: Flask, name: str, password: str = PASSWORD) -> bool:
    return int(login(app.test_client(), name, password).status_code) == 302


def row_actions(page: str, name: str) -> dict[str, str]:
    """The forms of ``name``'s row on the users page: button label → form action."""
    row = re.search(rf"<tr><td>{re.escape(name)}</td>.*?</tr>", page, re.S)
    if row is None:
        return {}
    forms = re.findall(r'<form method="post" action="([^"]+)".*?<button[^>]*>([^<]+)</button>',
                       row.group(0), re.S)
    return {label: action for action, label in forms}


def users_page(client: FlaskClient) -> str:
    page = client.get("/manage/users")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def act(app: Flask, admin: str, target: str, label: str, **form: str) -> Any:
    """``admin`` presses ``label`` on ``target``'s row of their users page (and confirms,
    for Remove: the page asks first)."""
    client, token = logged_in(app, admin)
    action = row_actions(users_page(client), target).get(label)
    assert action is not None, f"{admin} has no {label!r} for {target}"
    if label == "Remove":
        form = {"confirmed": "1", **form}
    return client.post(action, data={"csrf_token": token, **form})


# --- a branch admin is the admin of their branch only ----------------------------------------

def test_creating_a_user_under_an_existing_name_takes_nothing_over(bank: Flask) -> None:
    ada1, token = logged_in(bank, "ada1")
    resp = ada1.post("/manage/users", data={"name": "ada2", "password": NEW_PASSWORD,
                                            "role": "teller", "sites": "site-1",
                                            "csrf_token": token})
    assert resp.status_code in (302, 403)
    assert "already exists" in ada1.get("/manage/users").get_data(as_text=True) \
        or resp.status_code == 403
    assert not can_log_in(bank, "ada2", NEW_PASSWORD)
    ada2, _ = logged_in(bank, "ada2")                       # still site-2's admin
    assert "bob2" in users_page(ada2)


def test_a_branch_admin_cannot_give_themselves_more_sites(bank: Flask, signer: Signer) -> None:
    ada1, token = logged_in(bank, "ada1")
    ada1.post("/manage/users", data={"name": "ada1", "password": PASSWORD, "sites":
                                     "site-1,site-2,site-3", "role": "branch_admin",
                                     "csrf_token": token})
    assert row_actions(users_page(ada1), "ada1") == {}      # no form to edit themselves
    assert post_sns(bank.test_client(), signer.notification(
        desk_event(site_id="site-2").to_json())).status_code == 200
    again, _ = logged_in(bank, "ada1")
    assert again.get("/api/events").get_json()["events"] == []


@pytest.mark.parametrize("role, extra", [
    ("agency_officer", {"agency": "Demo Agency"}), ("agency_admin", {"agency": "Demo Agency"}),
    ("branch_admin", {}), ("root", {})])
def test_a_branch_admin_creates_tellers_only(bank: Flask, role: str, extra: dict[str, str]
                                             ) -> None:
    ada1, token = logged_in(bank, "ada1")
    ada1.post("/manage/users", data={"name": "mallory", "password": PASSWORD, "role": role,
                                     "sites": "site-1", "csrf_token": token, **extra})
    assert not can_log_in(bank, "mallory")


def test_a_branch_admin_gives_only_sites_they_have(bank: Flask) -> None:
    ada1, token = logged_in(bank, "ada1")
    refused = ada1.post("/manage/users", data={"name": "tom", "password": PASSWORD,
                                               "role": "teller", "sites": "site-1,site-2",
                                               "csrf_token": token})
    assert refused.status_code == 403 and not can_log_in(bank, "tom")
    made = ada1.post("/manage/users", data={"name": "tom", "password": PASSWORD,
                                            "role": "teller", "sites": "site-1",
                                            "csrf_token": token})
    assert made.status_code == 302 and can_log_in(bank, "tom")
    assert act(bank, "ada1", "tom", "Change sites", sites="site-2").status_code == 403


def test_a_branch_admin_cannot_remove_another_sites_user(bank: Flask) -> None:
    ada2, _ = logged_in(bank, "ada2")
    remove_bob = row_actions(users_page(ada2), "bob2")["Remove"]   # whatever names bob2
    ada1, token = logged_in(bank, "ada1")
    for path in (remove_bob, "/manage/users/bob2/delete"):
        assert ada1.post(path, data={"csrf_token": token}).status_code in (302, 403, 404)
    assert can_log_in(bank, "bob2")
    # a user at site-1 and site-2 is not within site-1 alone either
    assert row_actions(users_page(ada1), "carol12") == {}
    assert act(bank, "ada12", "carol12", "Remove").status_code == 302
    assert not can_log_in(bank, "carol12")


def test_the_users_page_lists_only_users_within_the_admins_sites(bank: Flask) -> None:
    page = users_page(logged_in(bank, "ada1")[0])
    names = re.findall(r"<tr><td>([^<]+)</td>", page)
    assert sorted(names) == ["ada1", "alice1"]
    assert sorted(re.findall(r"<tr><td>([^<]+)</td>", users_page(logged_in(bank, "ada12")[0]))
                  ) == ["ada1", "ada12", "ada2", "alice1", "bob2", "carol12"]


def test_agency_actions_are_not_in_a_banks_audit_and_bank_actions_not_in_an_agencys(
        bank: Flask, cloud_env: dict[str, str], tmp_path: Path) -> None:
    Agencies(cloud_env["AGENCIES_TABLE"]).add("County Police")
    config = operator_config(bank, cloud_env, tmp_path)
    operator_adds(bank, "chief", "--role", "agency_admin", "--agency", "County Police",
                  config=config)
    audit = services_of(bank).store.audit
    audit.add("olga", "case_closed", "MP-2026-0001", agency="County Police")
    audit.add("alice1", "acknowledged", "some-event", site_id="site-1")
    bank_page = logged_in(bank, "ada1")[0].get("/manage/audit").get_data(as_text=True)
    assert "some-event" in bank_page and "MP-2026-0001" not in bank_page
    agency_page = logged_in(bank, "chief")[0].get("/manage/audit").get_data(as_text=True)
    assert "MP-2026-0001" in agency_page and "some-event" not in agency_page


# --- agency users come from the agency's record -------------------------------------------------

def test_an_agency_admin_manages_only_their_agencys_officers(
        bank: Flask, cloud_env: dict[str, str], tmp_path: Path) -> None:
    agencies = Agencies(cloud_env["AGENCIES_TABLE"])
    agencies.add("County Police")
    agencies.add("City Police")
    config = operator_config(bank, cloud_env, tmp_path)
    operator_adds(bank, "chief", "--role", "agency_admin", "--agency", "County Police",
                  config=config)
    operator_adds(bank, "cop", "--role", "agency_officer", "--agency", "City Police",
                  config=config)
    typo = CliRunner().invoke(cli, ["dashboard", "add-user", "x", "--role", "agency_officer",
                                    "--agency", "Demo Agency", "--password-stdin", "--config",
                                    str(config)], input=PASSWORD + "\n")
    assert typo.exit_code != 0 and "no agency 'Demo Agency'" in typo.output
    chief, token = logged_in(bank, "chief")
    made = chief.post("/manage/users", data={"name": "olga", "password": PASSWORD,
                                             "role": "agency_officer", "agency": "City Police",
                                             "csrf_token": token})
    assert made.status_code == 302
    olga = services_of(bank).store.users.get("olga")
    assert olga is not None and olga["agency"] == "County Police"   # the admin's, not typed
    names = re.findall(r"<tr><td>([^<]+)</td>", users_page(chief))
    assert sorted(names) == ["chief", "olga"]                   # not City's cop, no bank user
    assert chief.post("/manage/users", data={"name": "t", "password": PASSWORD, "role": "teller",
                                             "sites": "site-1", "csrf_token": token}
                      ).status_code == 403
    assert chief.get("/api/events").status_code == 403


# --- sessions end when the account changes --------------------------------------------------------

def test_a_password_reset_ends_the_users_logins(bank: Flask) -> None:
    alice, _ = logged_in(bank, "alice1")
    assert alice.get("/api/events").status_code == 200
    assert act(bank, "ada1", "alice1", "Reset password",
               password=NEW_PASSWORD).status_code == 302
    assert alice.get("/api/events").status_code == 401
    assert not can_log_in(bank, "alice1") and can_log_in(bank, "alice1", NEW_PASSWORD)


def test_a_site_change_ends_the_users_logins(bank: Flask) -> None:
    carol, _ = logged_in(bank, "carol12")
    assert act(bank, "ada12", "carol12", "Change sites", sites="site-1").status_code == 302
    assert carol.get("/api/events").status_code == 401
    again, _ = logged_in(bank, "carol12")
    assert again.get("/api/events").status_code == 200


def test_a_removed_users_cookie_stays_dead_when_the_name_is_given_again(bank: Flask) -> None:
    alice, _ = logged_in(bank, "alice1")
    assert act(bank, "ada1", "alice1", "Remove").status_code == 302
    assert alice.get("/api/events").status_code == 401
    operator_adds(bank, "alice1", "--site", "site-1", "--site", "site-2")
    assert alice.get("/api/events").status_code == 401       # another account, same name
    assert alice.get("/").status_code == 302                  # to the login form


# --- sockets of a changed account are closed at once, server-side --------------------------------

@pytest.fixture
def served(bank: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, bank, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


class Desk:
    """A logged-in browser's socket: what it received, by event id."""

    def __init__(self, url: str, name: str) -> None:
        session = requests.Session()
        token = csrf_from(session.get(url + "/login", timeout=5).text)
        assert session.post(url + "/login", data={"username": name, "password": PASSWORD,
                                                  "csrf_token": token}, timeout=5).ok
        self.seen: list[str] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("desk_event", lambda record: self.seen.append(record["event_id"]))
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        self.client.connect(url, headers={"Cookie": cookie}, transports=["polling"],
                            wait_timeout=10)

    def close(self) -> None:
        self.client.disconnect()


def closed_and_deaf(bank: Flask, signer: Signer, victim: Desk, witness: Desk, site: str) -> None:
    """``victim``'s socket is closed, and a new event of ``site`` reaches ``witness`` (a
    desk still valid there) but not ``victim``."""
    wait_until(lambda: not victim.client.connected, 10, "the socket closed")
    event = desk_event(site_id=site)
    post_sns(bank.test_client(), signer.notification(event.to_json()))
    wait_until(lambda: event.event_id in witness.seen, 10, "the event at a valid desk")
    assert event.event_id not in victim.seen


def test_a_removed_users_socket_is_closed_and_gets_no_more_events(
        bank: Flask, served: str, signer: Signer) -> None:
    alice, ada = Desk(served, "alice1"), Desk(served, "ada1")
    try:
        assert act(bank, "ada1", "alice1", "Remove").status_code == 302
        closed_and_deaf(bank, signer, alice, ada, "site-1")
    finally:
        alice.close()
        ada.close()


def test_a_socket_leaves_the_site_taken_from_its_user(
        bank: Flask, served: str, signer: Signer) -> None:
    carol, ada = Desk(served, "carol12"), Desk(served, "ada12")
    try:
        before = desk_event(site_id="site-2")
        post_sns(bank.test_client(), signer.notification(before.to_json()))
        wait_until(lambda: before.event_id in carol.seen, 10, "carol sees site-2 at first")
        assert act(bank, "ada12", "carol12", "Change sites", sites="site-1").status_code == 302
        closed_and_deaf(bank, signer, carol, ada, "site-2")
    finally:
        carol.close()
        ada.close()
