"""Guard rails of the management screens: a customer id must be in the customer directory
before a photo is sent for it, photos are listed per customer with single delete, removing
asks first, sites are picked from known ones, and ``oneeye dashboard add-user`` finds the
running local stack's database."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard.auth import hash_password
from dashboard.services import services_of
from dashboard.store import open_store
from tests import dashboard_helpers as dh
from tests.cloud_support import CustomerApiStub
from tests.paths import REPO

Signer = dh.Signer
client_of, push = dh.client_of, dh.push


@pytest.fixture
def admin_app(tmp_path: Path, signer: Signer, cloud_env: dict[str, str],
              customer_api: CustomerApiStub) -> Flask:
    key_file = tmp_path / "customer_api_key"
    key_file.write_text(customer_api.api_key + "\n")
    customer_api.customers["C-1042"] = {"name": "Barack Obama", "segment": "Premier"}
    (tmp_path / "cloud").mkdir()
    app = dh.app_for(tmp_path / "cloud", signer, known_sites=["branch-9"], cloud={
        "bucket": cloud_env["ONEEYE_BUCKET"], "cases_table": cloud_env["CASES_TABLE"],
        "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"],
        "customer_api_url": customer_api.url, "customer_api_key_file": str(key_file)})
    # a branch admin gives only sites they have (dashboard.tenancy): ada has branch-9 too
    services_of(app).store.users.create("ada", hash_password(dh.PASSWORD),
                                        ["branch-1", "branch-9"], role="branch_admin")
    return app


def send_photo(client: FlaskClient, token: str, customer_id: str, photo: Path) -> Any:
    return client.post("/manage/customers/photos", headers={"X-CSRF-Token": token},
                       data={"customer_id": customer_id,
                             "photo": (io.BytesIO(photo.read_bytes()), photo.name)})


def uploads(cloud_env: dict[str, str], customer_id: str) -> list[str]:
    from oneeye.cloud.dal import store as cloud_store

    return cloud_store.Bucket(cloud_env["ONEEYE_BUCKET"]).keys(
        f"uploads/customers/{customer_id}/")


def test_a_customer_id_the_directory_does_not_know_is_refused_and_nothing_stored(
        admin_app: Flask, cloud_env: dict[str, str], examples: Path) -> None:
    ada, token = client_of(admin_app, "ada")
    refused = send_photo(ada, token, "C-9999", examples / "obama.jpg")
    assert refused.status_code == 400
    assert "C-9999 is not in the customer directory" in refused.get_json()["message"]
    assert uploads(cloud_env, "C-9999") == []
    accepted = send_photo(ada, token, "C-1042", examples / "obama.jpg")
    assert accepted.status_code == 202 and len(uploads(cloud_env, "C-1042")) == 1


def test_a_directory_that_does_not_answer_stores_nothing_and_says_try_again(
        admin_app: Flask, cloud_env: dict[str, str], examples: Path,
        customer_api: CustomerApiStub) -> None:
    customer_api.mode = "down"
    ada, token = client_of(admin_app, "ada")
    resp = send_photo(ada, token, "C-1042", examples / "obama.jpg")
    assert resp.status_code == 503 and "try again" in resp.get_json()["message"]
    assert uploads(cloud_env, "C-1042") == []


def test_the_customers_page_lists_names_and_photos_and_deletes_one_after_confirming(
        admin_app: Flask, cloud_env: dict[str, str], examples: Path) -> None:
    ada, token = client_of(admin_app, "ada")
    for photo in ("obama.jpg", "obama2.jpg"):
        assert send_photo(ada, token, "C-1042", examples / photo).status_code == 202
    page = ada.get("/manage/customers").get_data(as_text=True)
    assert "Barack Obama" in page and page.count('class="danger small"') == 2
    first, second = uploads(cloud_env, "C-1042")
    thumb = ada.get("/manage/customers/photo", query_string={"key": first})
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert ada.get("/manage/customers/photo",
                   query_string={"key": "status/x.json"}).status_code == 404
    url = "/manage/customers/C-1042/photos/delete"
    asked = ada.post(url, data={"csrf_token": token, "key": first})
    assert asked.status_code == 200 and "Delete this photo of C-1042?" in asked.get_data(
        as_text=True)
    assert uploads(cloud_env, "C-1042") == [first, second]          # nothing yet
    done = ada.post(url, data={"csrf_token": token, "key": first, "confirmed": "1"})
    assert done.status_code == 302 and uploads(cloud_env, "C-1042") == [second]
    other = ada.post(url, data={"csrf_token": token, "key": "uploads/customers/C-7/x.jpg",
                                "confirmed": "1"})
    assert other.status_code == 404


def test_removing_all_photos_and_a_user_ask_first(admin_app: Flask, cloud_env: dict[str, str],
                                                  examples: Path) -> None:
    ada, token = client_of(admin_app, "ada")
    send_photo(ada, token, "C-1042", examples / "obama.jpg")
    asked = ada.post("/manage/customers/C-1042/remove", data={"csrf_token": token})
    assert "Remove every photo of C-1042?" in asked.get_data(as_text=True)
    assert len(uploads(cloud_env, "C-1042")) == 1
    ada.post("/manage/customers/C-1042/remove", data={"csrf_token": token, "confirmed": "1"})
    assert uploads(cloud_env, "C-1042") == []
    store = services_of(admin_app).store
    store.users.create("bob", hash_password(dh.PASSWORD), ["branch-1"])
    bob = store.users.get("bob")["user_id"]
    asked = ada.post(f"/manage/users/{bob}/delete", data={"csrf_token": token})
    assert "Remove user bob?" in asked.get_data(as_text=True) and store.users.get("bob")
    ada.post(f"/manage/users/{bob}/delete", data={"csrf_token": token, "confirmed": "1"})
    assert store.users.get("bob") is None


def test_a_user_gets_only_known_sites_and_a_typo_is_refused(admin_app: Flask) -> None:
    ada, token = client_of(admin_app, "ada")
    page = ada.get("/manage/users").get_data(as_text=True)
    assert '<option value="branch-1">' in page and '<option value="branch-9">' in page
    form = {"csrf_token": token, "name": "carol", "password": dh.PASSWORD, "role": "teller"}
    typo = ada.post("/manage/users", data={**form, "sites": ["site-l"]})
    assert typo.status_code == 400 and "unknown site site-l" in typo.get_data(as_text=True)
    store = services_of(admin_app).store
    assert store.users.get("carol") is None
    assert "site-l" not in [s["site_id"] for s in store.sites()]
    ok = ada.post("/manage/users", data={**form, "sites": ["branch-1", "branch-9"]})
    assert ok.status_code == 302 and store.users.get("carol")["sites"] == ["branch-1",
                                                                           "branch-9"]


def test_add_user_finds_the_running_local_stacks_database(tmp_path: Path) -> None:
    var = tmp_path / "var" / "local"
    var.mkdir(parents=True)
    database = f"sqlite:///{var / 'dashboard' / 'dashboard.sqlite3'}"
    (var / "dashboard.json").write_text(json.dumps({"var_dir": str(var / "dashboard")}))
    (var / "stack.json").write_text(json.dumps({"pid": 1, "urls": {}, "env": {},
                                                "dashboard_config": str(var / "dashboard.json")}))
    result = subprocess.run(
        [sys.executable, "-m", "oneeye.cli", "dashboard", "add-user", "eve", "--site",
         "branch-1", "--password-stdin"], cwd=tmp_path, input=dh.PASSWORD + "\n",
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "using the local stack's dashboard" in result.stderr
    store = open_store(database)
    try:
        assert store.users.get("eve")["sites"] == ["branch-1"]
    finally:
        store.close()
    assert not (tmp_path / "var" / "dashboard").exists()   # not the default database


def test_a_photo_the_indexer_refused_is_shown_as_not_used_with_its_reason(
        admin_app: Flask, cloud_env: dict[str, str], examples: Path, tmp_path: Path) -> None:
    """A refused photo stays in the bucket (so it can be looked at and deleted) but is never
    shown as one the cameras use: it is greyed out with the indexer's reason."""
    from PIL import Image

    from tests.cloud_support import run_queue

    ada, token = client_of(admin_app, "ada")
    wall = tmp_path / "wall.jpg"                       # a photo with no face in it
    Image.new("RGB", (400, 400), (190, 190, 185)).save(wall)
    for photo in (examples / "obama.jpg", wall):
        assert send_photo(ada, token, "C-1042", photo).status_code == 202
    before = ada.get("/manage/customers").get_data(as_text=True)
    assert re.findall(r'<li class="photo-(\w+)"', before) == ["pending", "pending"]
    assert before.count("checking…") == 2
    assert sorted(r["status"] for r in run_queue(cloud_env)) == ["accepted", "rejected"]
    page = ada.get("/manage/customers").get_data(as_text=True)
    assert sorted(re.findall(r'<li class="photo-(\w+)"', page)) == ["accepted", "rejected"]
    [why] = re.findall(r'<span class="photo-verdict bad">not used</span>'
                       r'<small class="photo-why">([^<]+)</small>', page)
    assert re.search(r"(?i)no face", why)
    assert page.count('class="danger small"') == 2     # either can still be deleted
