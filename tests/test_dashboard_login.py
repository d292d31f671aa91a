"""Login throttling per account (shared by every process), trusted proxies, safe ``next``."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from dashboard.proxies import TrustedProxies
from dashboard.services import services_of
from tests.dashboard_helpers import PASSWORD, Signer, add_user, app_for, csrf_from
from tests.paths import REPO
from tests.wait import ManualClock

CASE = REPO.parent / "shared" / "cases" / "proxy-login" / "proxy_logins.py"


@pytest.fixture
def app_options() -> dict[str, Any]:
    """The conftest ``app`` with a small per-account limit and a higher per-address ceiling."""
    return {"login_attempts": 3, "login_ip_attempts": 8}


@pytest.fixture
def desk_users() -> dict[str, list[str]]:
    return {name: ["branch-1"] for name in ("alice", "bob", "demo")}


def login_from(client: Any, name: str, password: str = PASSWORD, *, addr: str = "127.0.0.1",
               headers: dict[str, str] | None = None, query: str = "") -> Any:
    env = {"REMOTE_ADDR": addr}
    token = csrf_from(client.get("/login", environ_base=env, headers=headers).get_data(
        as_text=True))
    return client.post("/login" + query, environ_base=env, headers=headers,
                       data={"username": name, "password": password, "csrf_token": token})


def test_failures_lock_only_the_guessed_account(app: Flask) -> None:
    client = app.test_client()
    for i in range(3):
        assert login_from(client, "alice", f"guess-{i}").status_code == 401
    resp = login_from(client, "alice")
    assert resp.status_code == 429 and b"Too many failed attempts" in resp.data
    # the same address, another account: unaffected
    assert login_from(app.test_client(), "bob").status_code == 302


def test_account_lock_holds_across_addresses_and_ends_with_the_window(app: Flask) -> None:
    clock = ManualClock()
    services_of(app).login_throttle.clock = clock
    for i in range(3):
        login_from(app.test_client(), "alice", f"guess-{i}", addr=f"198.51.100.{i + 1}")
    assert login_from(app.test_client(), "alice", addr="192.0.2.77").status_code == 429
    clock.advance(290)
    assert login_from(app.test_client(), "alice").status_code == 429
    clock.advance(20)  # the 300 s window has passed
    assert login_from(app.test_client(), "alice").status_code == 302


def test_success_clears_the_account_count(app: Flask) -> None:
    for i in range(2):
        login_from(app.test_client(), "alice", f"guess-{i}")
    assert login_from(app.test_client(), "alice").status_code == 302
    for i in range(2):
        assert login_from(app.test_client(), "alice", f"again-{i}").status_code == 401
    assert login_from(app.test_client(), "alice").status_code == 302


def test_one_address_guessing_many_accounts_hits_the_higher_ceiling(app: Flask) -> None:
    client = app.test_client()
    for i in range(8):  # login_ip_attempts, spread so no account reaches its own limit
        assert login_from(client, f"user{i}", "guess-guess").status_code == 401
    assert login_from(client, "bob").status_code == 429
    assert login_from(app.test_client(), "bob", addr="10.1.1.1").status_code == 302


def test_two_dashboard_processes_on_one_database_share_the_counts(
        tmp_path: Path, signer: Signer) -> None:
    first = app_for(tmp_path, signer, login_attempts=3)
    second = app_for(tmp_path, signer, login_attempts=3)  # same var_dir: same SQLite file
    add_user(first, "alice", ["branch-1"])
    for i, app in enumerate((first, second, first)):
        assert login_from(app.test_client(), "alice", f"guess-{i}").status_code == 401
    assert login_from(second.test_client(), "alice").status_code == 429


def _redis_url() -> str:
    import redis

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return url


def test_two_dashboards_share_the_counts_in_redis(tmp_path: Path, signer: Signer) -> None:
    url = _redis_url()
    name = f"user-{uuid.uuid4().hex[:8]}"
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    first = app_for(tmp_path / "a", signer, login_attempts=2, login_store=url)
    second = app_for(tmp_path / "b", signer, login_attempts=2, login_store=url)  # own databases
    add_user(first, name, ["branch-1"])
    add_user(second, name, ["branch-1"])
    assert login_from(first.test_client(), name, "guess-1").status_code == 401
    assert login_from(second.test_client(), name, "guess-2").status_code == 401
    assert login_from(first.test_client(), name).status_code == 429
    services_of(second).login_throttle.succeeded(name)
    assert login_from(first.test_client(), name).status_code == 302


@pytest.mark.parametrize("target", [
    "/%09/evil.example/phish", "//evil.example/", "/\\evil.example", "\\\\evil.example",
    "https://evil.example/", "http:evil.example", "javascript:alert(1)", "%2F%2Fevil.example",
    "/%2F/evil.example", "/%252F%252Fevil.example", "/%5Cevil.example", "/%0d%0aSet-Cookie:x=1",
    "/ok%0AX-Injected:1", "%0a/evil", "/%E2%80%A8/evil", "evil.example", "",
])
def test_next_outside_the_site_redirects_home(app: Flask, target: str) -> None:
    from urllib.parse import quote

    resp = login_from(app.test_client(), "alice", query="?next=" + quote(target, safe="%/:"))
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"


def test_next_on_the_site_is_kept(app: Flask) -> None:
    resp = login_from(app.test_client(), "alice", query="?next=/history%3Fkind%3Dcustomer_arrived")
    assert resp.status_code == 302 and resp.headers["Location"] == "/history?kind=customer_arrived"


# -- behind a reverse proxy --------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, signer: Signer) -> Iterator[tuple[str, Flask]]:
    """The dashboard over real HTTP on 127.0.0.1, with 127.0.0.1 as its trusted proxy."""
    app = app_for(tmp_path, signer, trusted_proxies=["127.0.0.1/32"])
    add_user(app, "demo", ["branch-1"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(10)


def test_proxy_login_case_one_typist_does_not_lock_the_branch(
        served: tuple[str, Flask], caplog: pytest.LogCaptureFixture) -> None:
    """../shared/cases/proxy-login: 5 wrong passwords for mallory, then demo logs in."""
    url, _ = served
    caplog.set_level(logging.INFO, logger="dashboard.auth")
    out = subprocess.run([sys.executable, str(CASE), url, "demo", PASSWORD],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    lines = out.strip().splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["(401, False)"] * 5 + ["(302, False)"]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("from 203.0.113.66" in m for m in messages) == 5
    assert any("demo logged in from 10.20.0.5" in m for m in messages)
    assert not any("from 127.0.0.1" in m for m in messages)


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(tmp_path: Path,
                                                              signer: Signer) -> None:
    app = app_for(tmp_path, signer, login_ip_attempts=3, trusted_proxies=["10.0.0.1/32"])
    add_user(app, "bob", ["branch-1"])
    client = app.test_client()
    for i in range(3):  # a direct client inventing a new address for every guess
        login_from(client, f"user{i}", "guess-guess", addr="192.0.2.9",
                   headers={"X-Forwarded-For": f"198.51.100.{i}"})
    # all three counted against its real address: the ceiling holds
    assert login_from(client, "bob", addr="192.0.2.9").status_code == 429
    # the configured proxy is believed
    proxied = login_from(app.test_client(), "bob", addr="10.0.0.1",
                         headers={"X-Forwarded-For": "198.51.100.200"})
    assert proxied.status_code == 302


def test_trusted_proxy_sets_client_address_scheme_and_host() -> None:
    import ipaddress

    seen: dict[str, Any] = {}

    def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    middleware = TrustedProxies(echo, [ipaddress.ip_network("10.0.0.0/8")], hops=1)
    forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.5, 10.9.9.9", "HTTP_X_FORWARDED_PROTO":
                 "https", "HTTP_X_FORWARDED_HOST": "desk.bank.example", "wsgi.url_scheme": "http",
                 "HTTP_HOST": "10.0.0.2:8000", "SERVER_NAME": "x", "SERVER_PORT": "8000"}
    list(middleware({**forwarded, "REMOTE_ADDR": "10.0.0.7"}, lambda *a: None))
    # one hop: the address the proxy itself saw (the last one) is the client
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"], seen["HTTP_HOST"]) == (
        "10.9.9.9", "https", "desk.bank.example")
    list(middleware({**forwarded, "REMOTE_ADDR": "192.0.2.1"}, lambda *a: None))
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"], seen["HTTP_HOST"]) == (
        "192.0.2.1", "http", "10.0.0.2:8000")
    list(middleware({**forwarded, "REMOTE_ADDR": "::ffff:10.0.0.7"}, lambda *a: None))
    assert seen["REMOTE_ADDR"] == "10.9.9.9"


def test_tls_cert_and_key_go_together(tmp_path: Path, signer: Signer) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="tls_cert and tls_key"):
        app_for(tmp_path, signer, tls_cert=tmp_path / "cert.pem")
