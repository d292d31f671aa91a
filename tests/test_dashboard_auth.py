"""Login, CSRF, rate limit, Socket.IO refusal, site isolation, acknowledgements, add-user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from dashboard import socketio_of
from dashboard.services import services_of
from dashboard.store import open_store
from oneeye.cli import cli
from tests.dashboard_helpers import (
    PASSWORD,
    Signer,
    add_user,
    app_for,
    csrf_from,
    desk_event,
    login,
    post_sns,
)


@pytest.fixture
def app_options() -> dict[str, Any]:
    return {"login_attempts": 3}


@pytest.fixture
def desk_users() -> dict[str, list[str]]:
    return {"alice": ["branch-1"], "bob": ["branch-2"], "carol": ["branch-1", "branch-2"]}


def test_pages_need_login(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/").status_code == 302
    assert client.get("/").headers["Location"].startswith("/login")
    assert client.get("/api/events").status_code == 401
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_pages_name_their_icon_so_no_browser_asks_for_a_missing_favicon(app: Flask) -> None:
    # Without a <link rel="icon"> every browser fetches /favicon.ico: a 404 and a console error.
    assert app.test_client().get("/favicon.ico").status_code == 404
    assert '<link rel="icon" href="data:,">' in app.test_client().get("/login").get_data(
        as_text=True)


def test_login_logout_and_secure_cookie_flags(tmp_path: Path, signer: Signer) -> None:
    app = app_for(tmp_path, signer, session_cookie_secure=True)
    add_user(app, "alice", ["branch-1"])
    client = app.test_client()
    resp = login(client, "alice")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/", base_url="https://localhost")
    assert page.status_code == 200 and b"alice" in page.data
    token = csrf_from(page.get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token}, base_url="https://localhost")
    assert client.get("/", base_url="https://localhost").status_code == 302


def test_cookie_saved_before_logout_is_refused_after_it(app: Flask) -> None:
    client = app.test_client()
    login(client, "alice")
    page = client.get("/")
    saved = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert saved is not None
    client.post("/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    thief = app.test_client()
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], saved.value)
    assert thief.get("/api/events").status_code == 401
    assert thief.get("/").status_code == 302
    assert not socketio_of(app).test_client(app, flask_test_client=thief).is_connected()


def test_logout_closes_that_logins_open_sockets_only(app: Flask, signer: Signer) -> None:
    sio = socketio_of(app)
    tab = app.test_client()
    login(tab, "alice")
    other_login = app.test_client()
    login(other_login, "alice")        # same user, another browser: stays connected
    first = sio.test_client(app, flask_test_client=tab)
    second = sio.test_client(app, flask_test_client=tab)   # a second tab of the same login
    other = sio.test_client(app, flask_test_client=other_login)
    assert first.is_connected() and second.is_connected() and other.is_connected()
    page = tab.get("/")
    tab.post("/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert not first.is_connected() and not second.is_connected()
    assert other.is_connected()
    post_sns(app.test_client(), signer.notification(desk_event("branch-1").to_json()))
    assert [m["name"] for m in other.get_received()].count("desk_event") == 1


def test_wrong_password_and_unknown_user_are_401(app: Flask) -> None:
    client = app.test_client()
    assert login(client, "alice", "wrong password").status_code == 401
    assert login(client, "nobody").status_code == 401


def test_login_rate_limit(app: Flask) -> None:
    client = app.test_client()
    for _ in range(3):
        assert login(client, "alice", "guess-guess").status_code == 401
    # even the right password is refused while the limit holds
    resp = login(client, "alice")
    assert resp.status_code == 429
    assert b"Too many failed attempts" in resp.data


def test_login_without_csrf_token_refused(app: Flask) -> None:
    client = app.test_client()
    client.get("/login")
    resp = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert resp.status_code == 400


def test_login_next_only_allows_local_paths(app: Flask) -> None:
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login?next=//evil.example/", data={
        "username": "alice", "password": PASSWORD, "csrf_token": token})
    assert resp.headers["Location"] == "/"


def test_ack_needs_csrf_header(app: Flask, signer: Signer) -> None:
    event = desk_event(kind="missing_person_sighted", person_id="MP-2026-0042", name="Tom")
    post_sns(app.test_client(), signer.notification(event.to_json()))
    client = app.test_client()
    login(client, "alice")
    assert client.post(f"/api/events/{event.event_id}/ack").status_code == 400
    token = csrf_from(client.get("/").get_data(as_text=True))
    resp = client.post(f"/api/events/{event.event_id}/ack", headers={"X-CSRF-Token": "nope"})
    assert resp.status_code == 400
    resp = client.post(f"/api/events/{event.event_id}/ack", headers={"X-CSRF-Token": token})
    assert resp.status_code == 200
    ack = resp.get_json()
    assert ack["by"] == "alice" and ack["at"].endswith("Z")
    # the audit log keeps the first acknowledgement; a second one does not overwrite it
    carol = app.test_client()
    login(carol, "carol")
    token2 = csrf_from(carol.get("/").get_data(as_text=True))
    again = carol.post(f"/api/events/{event.event_id}/ack", headers={"X-CSRF-Token": token2})
    assert again.get_json()["by"] == "alice"
    rows = client.get("/api/events?kind=missing_person_sighted").get_json()["events"]
    assert rows[0]["ack"] == {"by": "alice", "at": ack["at"]}
    assert client.get("/api/events?kind=missing_person_sighted&unacked=1").get_json()[
        "events"] == []


def test_unauthenticated_socket_refused(app: Flask) -> None:
    sio = socketio_of(app)
    anonymous = sio.test_client(app)
    assert not anonymous.is_connected()
    client = app.test_client()
    login(client, "alice", "wrong password")
    assert not sio.test_client(app, flask_test_client=client).is_connected()


def test_socket_of_deleted_user_refused(app: Flask) -> None:
    client = app.test_client()
    login(client, "alice")
    users = services_of(app).store.users
    assert users.remove(users.get("alice")["user_id"]) is not None
    assert not socketio_of(app).test_client(app, flask_test_client=client).is_connected()


def test_site_isolation_sockets_and_api(app: Flask, signer: Signer) -> None:
    sio = socketio_of(app)
    socks = {}
    for name in ("alice", "bob", "carol"):
        client = app.test_client()
        login(client, name)
        socks[name] = (client, sio.test_client(app, flask_test_client=client))
        socks[name][1].get_received()
    e1 = desk_event(site_id="branch-1", name="Ada")
    e2 = desk_event(site_id="branch-2", name="Grace", person_id="C-2001")
    for e in (e1, e2):
        assert post_sns(app.test_client(), signer.notification(e.to_json())).status_code == 200

    def got(name: str) -> list[str]:
        return sorted(m["args"][0]["event_id"] for m in socks[name][1].get_received()
                      if m["name"] == "desk_event")
    assert got("alice") == [e1.event_id]
    assert got("bob") == [e2.event_id]
    assert got("carol") == sorted([e1.event_id, e2.event_id])

    alice = socks["alice"][0]
    assert [r["event_id"] for r in alice.get("/api/events").get_json()["events"]] == [e1.event_id]
    assert alice.get(f"/api/events?after={e1.event_id}").get_json()["events"] == []
    token = csrf_from(alice.get("/").get_data(as_text=True))
    # another site's event looks exactly like a missing one
    resp = alice.post(f"/api/events/{e2.event_id}/ack", headers={"X-CSRF-Token": token})
    assert resp.status_code == 404
    history = alice.get("/history").get_data(as_text=True)
    assert "Ada" in history and "Grace" not in history


def test_history_search_by_person_and_time(app: Flask, signer: Signer) -> None:
    for name, pid in (("Ada Lovelace", "C-1"), ("Alan Turing", "C-2")):
        post_sns(app.test_client(), signer.notification(
            desk_event(name=name, person_id=pid).to_json()))
    client = app.test_client()
    login(client, "alice")
    assert "Alan" not in client.get("/history?person=ada").get_data(as_text=True)
    rows = client.get("/api/events?person=C-2").get_json()["events"]
    assert [r["event"]["customer"]["name"] for r in rows] == ["Alan Turing"]
    assert client.get("/api/events?since=2999-01-01T00:00").get_json()["events"] == []
    assert len(client.get("/api/events?until=2999-01-01T00:00:00Z").get_json()["events"]) == 2
    assert client.get("/api/events?since=yesterday").status_code == 400
    assert client.get("/api/events?kind=bogus").status_code == 400
    assert client.get("/history?since=2999-01-01T00:00").status_code == 200


def test_add_user_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'users.sqlite3'}"
    runner = CliRunner()
    result = runner.invoke(cli, ["dashboard", "add-user", "dave", "--site", "branch-9",
                                 "--site", "branch-10", "--password-stdin",
                                 "--database-url", db], input="s3cret-passw0rd\n")
    assert result.exit_code == 0, result.output
    user = open_store(db).users.get("dave")
    assert user is not None and user["sites"] == ["branch-9", "branch-10"]
    assert user["password_hash"].startswith("$argon2id$")
    short = runner.invoke(cli, ["dashboard", "add-user", "eve", "--site", "b", "--password-stdin",
                                "--database-url", db], input="short\n")
    assert short.exit_code != 0 and "at least 8" in short.output
    bad_site = runner.invoke(cli, ["dashboard", "add-user", "eve", "--site", "../x",
                                   "--password-stdin", "--database-url", db], input="x" * 9)
    assert bad_site.exit_code != 0


def test_security_headers(app: Flask) -> None:
    resp = app.test_client().get("/login")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    # plain http here (or TLS ended by a proxy, which sends its own HSTS): none from us
    assert "Strict-Transport-Security" not in resp.headers


def test_alerts_page_shows_only_the_users_sites(tmp_path: Path, signer: Signer) -> None:
    outbox = tmp_path / "outbox.jsonl"
    lines = [
        {"kind": "sms", "to": "+15550101", "body": "Jo seen at site-1", "site_id": "site-1"},
        {"kind": "email", "to": "duty-1@bank.example", "subject": "Alert: Jo",
         "body": "Jo seen; snapshot https://x/site-1.jpg", "site_id": "site-1"},
        {"kind": "sms", "to": "+15550202", "body": "Sam seen at site-2", "site_id": "site-2"},
        {"kind": "sms", "to": "+15550303", "body": "no site named"},
    ]
    outbox.write_text("".join(json.dumps(line) + "\n" for line in lines) + "garbage line\n")
    app = app_for(tmp_path, signer, alert_outbox_path=outbox)
    add_user(app, "alice", ["site-1"])
    add_user(app, "bob", ["site-2"])
    pages = {}
    for name in ("alice", "bob"):
        client = app.test_client()
        login(client, name)
        resp = client.get("/alerts")
        assert resp.status_code == 200
        pages[name] = resp.get_data(as_text=True)
    assert "Jo seen at site-1" in pages["alice"] and "duty-1@bank.example" in pages["alice"]
    assert "Sam seen" not in pages["alice"]
    assert "Sam seen at site-2" in pages["bob"] and "+15550202" in pages["bob"]
    for leaked in ("Jo seen", "+15550101", "duty-1@bank.example", "site-1.jpg"):
        assert leaked not in pages["bob"]
    for page in pages.values():  # lines naming no site are for no one
        assert "no site named" not in page and "garbage line" not in page
    # the page's old address still leads there, for one release
    old = client.get("/outbox")
    assert old.status_code == 308 and old.headers["Location"].endswith("/alerts")


def test_old_outbox_path_setting_still_works_with_a_warning(tmp_path: Path) -> None:
    from dashboard.settings import DashboardSettings

    with pytest.warns(DeprecationWarning, match="alert_outbox_path"):
        settings = DashboardSettings.model_validate({"outbox_path": str(tmp_path / "a.jsonl")})
    assert settings.alert_outbox_path == tmp_path / "a.jsonl"


def test_run_on_a_taken_port_fails_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["dashboard", "run", "--port", str(port),
                                          "--database-url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
