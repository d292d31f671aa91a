"""Shared fixtures. Test data comes from ../shared/data (never downloaded).

Where each fixture lives (every one reaches every test by name; nothing by ``import *``):

- here: test data (``data_dir``, ``examples``, ``lfw``, ``miranda_gallery``: the
  customers gallery of the Hamilton clip's Lin-Manuel Miranda), a free ``port``, the bank's
  ``photos`` server, the dashboard's ``signer``, ``app``, ``client`` and the app's ``clock``
  (a module tunes its app by overriding ``app_options`` and ``desk_users``), the dashboard
  database on both backends (``database_url`` and ``store``, each test once on SQLite and
  once on PostgreSQL; ``pg_database``: this run's PostgreSQL database), and the devices
  the cloud tests' messages speak for in the moto server's registry (``desk_device``:
  ``cam-dev-1``; ``mall_devices``: ``mall3-cam``, ``mall4-cam``), which a module that sends
  their messages asks for by name or with ``pytest.mark.usefixtures``;
- ``tests/cloud_support.py`` (a plugin, registered below): ``moto_server``, ``cloud_env``,
  ``customer_api``, ``mqtt_broker``.

Helpers that are not fixtures are imported explicitly: :func:`tests.wait.wait_until` (the
one way to wait), :func:`tests.net_support.free_port`, ``tests/*_support.py``,
``tests/paths.py`` (``REPO``, ``DATA``). A test module imports from none of the others (nor
from this file): what two modules share lives here or in a support module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from oneeye.cloud import devices
from tests.http_support import FileServer
from tests.net_support import free_port
from tests.paths import DATA
from tests.store_support import PG_ABSENT, new_pg_database, pg_available, pg_schema
from tests.wait import ManualClock

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

    from dashboard.store import Store
    from tests.dashboard_helpers import Signer

pytest_plugins = ["tests.cloud_support"]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "SOURCES.md").is_file():
        pytest.fail(f"test data not found at {DATA} (set ONEEYE_DATA)")
    return DATA


@pytest.fixture(scope="session")
def examples(data_dir: Path) -> Path:
    return data_dir / "ageitgey_face_recognition" / "examples"


@pytest.fixture(scope="session")
def lfw(data_dir: Path) -> Path:
    return data_dir / "lfw_dev"


@pytest.fixture(scope="session")
def miranda_gallery(examples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A customers gallery of one person, Lin-Manuel Miranda, who is in the Hamilton clip."""
    from oneeye import gallery as gal

    out = tmp_path_factory.mktemp("g") / "customers.npz"
    g, report = gal.enrol([("lin-manuel-miranda", examples / "lin-manuel-miranda.png")],
                          watchlist="customers")
    assert not report.rejected
    gal.save(g, out)
    return out


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def photos(examples: Path) -> Iterator[str]:
    """The bank's photo server stand-in: real photos from the test data over loopback HTTP."""
    server = FileServer(examples)
    yield server.url
    server.close()


# --- the cloud's device registry -------------------------------------------------------------

@pytest.fixture
def desk_device(moto_server: str) -> None:
    """``cam-dev-1`` (``tests.cloud_support.match``/``health``) in the registry."""
    devices.register("cam-dev-1", "branch-12", ["door"])


@pytest.fixture
def mall_devices(moto_server: str) -> None:
    """``mall3-cam`` (``tests.cloud_support.sighting``) and ``mall4-cam`` in the registry."""
    devices.register("mall3-cam", "mall-3", ["entrance-north", "food-court"])
    devices.register("mall4-cam", "mall-4", ["entrance-north"])


# --- the dashboard ---------------------------------------------------------------------------

@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless chromium (``tests.browser_support.launch``); screenshots go to ARTIFACTS."""
    from playwright.sync_api import sync_playwright

    from tests.browser_support import ARTIFACTS, launch

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = launch(pw)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def signer() -> Signer:
    """The test's own SNS signing key and certificate (pinned by URL in every ``app``)."""
    from tests.dashboard_helpers import Signer

    return Signer()


@pytest.fixture
def app_options() -> dict[str, Any]:
    """Extra ``DashboardSettings`` for ``app``; a test module overrides this fixture."""
    return {}


@pytest.fixture
def desk_users() -> dict[str, list[str]]:
    """The tellers ``app`` starts with (name → sites), password ``dashboard_helpers.PASSWORD``."""
    return {"alice": ["branch-1"]}


@pytest.fixture
def clock() -> ManualClock:
    """The clock ``app`` runs on: real time until the test calls ``clock.advance(s)``."""
    return ManualClock()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """This run's own PostgreSQL database (libpq URL), dropped at the end; skips the test
    when no server runs on 127.0.0.1:5432."""
    if not pg_available():
        pytest.skip(PG_ABSENT)
    with new_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty dashboard database: a SQLite file in ``tmp_path``, then a fresh schema of
    :func:`pg_database` (the URL's ``search_path``; ``application_name`` is its name)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dashboard.sqlite3'}"
        return
    with pg_schema(request.getfixturevalue("pg_database")) as url:
        yield url


@pytest.fixture
def store(database_url: str, clock: ManualClock) -> Iterator[Store]:
    """:func:`dashboard.store.open_store` on ``database_url`` (migrated), on ``clock``."""
    from dashboard.store import open_store

    opened = open_store(database_url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def app(tmp_path: Path, signer: Signer, app_options: dict[str, Any],
        desk_users: dict[str, list[str]], clock: ManualClock,
        database_url: str) -> Iterator[Flask]:
    """A dashboard (``create_app``) trusting ``signer``, on a fresh store of each backend
    (``database_url``: SQLite, then PostgreSQL when the server runs here): every test of the
    app runs on both, as a branch may deploy either. Its connections close with the test."""
    from dashboard.services import services_of
    from tests.dashboard_helpers import add_user, app_for

    flask_app = app_for(tmp_path, signer, clock=clock,
                        **{"database_url": database_url, **app_options})
    for name, sites in desk_users.items():
        add_user(flask_app, name, sites)
    yield flask_app
    services_of(flask_app).store.close()


@pytest.fixture
def cloud_app(tmp_path: Path, signer: Signer, cloud_env: dict[str, str],
              monkeypatch: pytest.MonkeyPatch) -> Flask:
    """A dashboard connected to the test cloud, whose customers watchlist learns
    (``LEARN_WATCHLISTS``): alice (teller, branch-1), bob (teller, branch-2), ada (branch
    admin, branch-1)."""
    from dashboard.auth import hash_password
    from dashboard.services import services_of
    from tests.cloud_support import load_handler
    from tests.dashboard_helpers import PASSWORD, app_for

    monkeypatch.setenv("LEARN_WATCHLISTS", "customers")
    load_handler("gallery_indexer")
    flask_app = app_for(tmp_path, signer, cloud={
        "bucket": cloud_env["ONEEYE_BUCKET"], "cases_table": cloud_env["CASES_TABLE"],
        "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"]})
    users = services_of(flask_app).store.users
    digest = hash_password(PASSWORD)
    users.create("alice", digest, ["branch-1"])
    users.create("bob", digest, ["branch-2"])
    users.create("ada", digest, ["branch-1"], role="branch_admin")
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app`` (logged out)."""
    return app.test_client()


