"""The demo bank's customer API: SQLite, seeded from ../shared/data, keyed by x-api-key.

``GET /customers/{id}`` → ``{"id", "name", "photo_url", "segment", "notes",
"since"}`` (404 unknown, 401 without the key), ``GET /photos/{id}.jpg`` serves
the customer's first photo (what ``photo_url`` points at) with the key header or
through the link in the record, signed with the key and valid for a week
(401 otherwise: a customer's face is personal data), ``/healthz``.

Demo customers are the ``lfw_dev/gallery`` identities, then the people of
``knn_examples/train``, as ``C-1001``…; :func:`enrol_photos` lists their
photos as ``uploads/customers/{customer_id}/{n}.jpg`` objects, so the stack
uploads them and the real indexer builds the customers gallery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from oneeye.cloud.dal import keys

log = logging.getLogger(__name__)

SEGMENTS = ("Premier", "Private", "Business", "Everyday")
_SCHEMA = """CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, segment TEXT NOT NULL, notes TEXT NOT NULL,
  since TEXT NOT NULL, photos TEXT NOT NULL)"""


@dataclass(frozen=True)
class DemoCustomer:
    id: str
    name: str
    segment: str
    notes: str
    since: str
    photos: tuple[Path, ...]


def demo_people(data_dir: Path, count: int) -> list[tuple[str, list[Path]]]:
    """(display name, photos) of the demo customers, in a stable order."""
    people: list[tuple[str, list[Path]]] = []
    knn = data_dir / "ageitgey_face_recognition" / "examples" / "knn_examples" / "train"
    lfw = data_dir / "lfw_dev" / "gallery"
    for root in (lfw, knn):
        if not root.is_dir():
            continue
        for person in sorted(p for p in root.iterdir() if p.is_dir()):
            photos = sorted(p for p in person.iterdir()
                            if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            if photos:
                people.append((person.name.replace("_", " ").title(), photos))
    if not people:
        log.warning("no demo photos under %s: the customer API starts empty", data_dir)
    return people[:count]


def demo_customers(data_dir: Path, count: int) -> list[DemoCustomer]:
    out = []
    for i, (name, photos) in enumerate(demo_people(data_dir, count)):
        out.append(DemoCustomer(
            id=f"C-{1001 + i}", name=name, segment=SEGMENTS[i % len(SEGMENTS)],
            notes=["Prefers the quiet desk", "Mortgage review due", "Ask about the new "
                   "savings account", "Speaks French and English"][i % 4],
            since=f"{2008 + i % 15}-0{1 + i % 9}-15", photos=tuple(photos)))
    return out


def enrol_photos(customers: list[DemoCustomer]) -> list[tuple[str, Path]]:
    """(S3 key, local photo) for the customers gallery: uploads/customers/{id}/{n}.jpg."""
    return [(keys.upload("customers", c.id, str(n),
                         p.suffix.lower().lstrip(".").replace("jpeg", "jpg")), p)
            for c in customers for n, p in enumerate(c.photos, start=1)]


#: How long a photo link in a customer record works (the desk's history shows old cards).
PHOTO_URL_TTL_S = 7 * 86400


class CustomerApi:
    def __init__(self, db_path: Path, *, api_key: str, public_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._key = api_key
        self._clock = clock
        self.public_url = public_url.rstrip("/")
        self._server: BaseWSGIServer | None = None

    def seed(self, customers: list[DemoCustomer]) -> None:
        with self._lock:
            for c in customers:
                self._db.execute("INSERT OR REPLACE INTO customers VALUES (?,?,?,?,?,?)",
                                 (c.id, c.name, c.segment, c.notes, c.since,
                                  json.dumps([str(p) for p in c.photos])))
        log.info("customer API: %d demo customers", len(customers))

    def get(self, customer_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT id, name, segment, notes, since FROM customers "
                                   "WHERE id=?", (customer_id,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "name": row[1], "segment": row[2], "notes": row[3],
                "since": row[4], "photo_url": self.photo_url(row[0])}

    def photo_url(self, customer_id: str) -> str:
        """A link to the customer's photo that works without the key header until it expires:
        signed with the API key (HMAC-SHA256 of ``id:expires``), as S3 presigns a GET."""
        expires = int(self._clock()) + PHOTO_URL_TTL_S
        return (f"{self.public_url}/photos/{customer_id}.jpg?expires={expires}"
                f"&signature={self._sign(customer_id, expires)}")

    def _sign(self, customer_id: str, expires: int) -> str:
        return hmac.new(self._key.encode(), f"{customer_id}:{expires}".encode(),
                        hashlib.sha256).hexdigest()

    def _photo_allowed(self, req: Request, customer_id: str) -> bool:
        if hmac.compare_digest(req.headers.get("x-api-key", ""), self._key):
            return True
        try:
            expires = int(req.args.get("expires", ""))
        except ValueError:
            return False
        return expires >= self._clock() and hmac.compare_digest(
            req.args.get("signature", ""), self._sign(customer_id, expires))

    def photo(self, customer_id: str) -> Path | None:
        with self._lock:
            row = self._db.execute("SELECT photos FROM customers WHERE id=?",
                                   (customer_id,)).fetchone()
        photos = json.loads(row[0]) if row else []
        return Path(photos[0]) if photos else None

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._dispatch(Request(environ))(environ, start_response)

    def _dispatch(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if req.method != "GET":
            return _json({"error": "method not allowed"}, 405)
        if parts == ["healthz"]:
            return _json({"ok": True})
        if len(parts) == 2 and parts[0] == "photos" and parts[1].endswith(".jpg"):
            if not self._photo_allowed(req, parts[1][:-4]):
                return _json({"error": "photos need the x-api-key header or a signed link"},
                             401)
            path = self.photo(parts[1][:-4])
            if path is None or not path.is_file():
                return _json({"error": "no photo"}, 404)
            mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
            return Response(path.read_bytes(), mimetype=mime,
                            headers={"Cache-Control": "max-age=3600"})
        if len(parts) == 2 and parts[0] == "customers":
            if not hmac.compare_digest(req.headers.get("x-api-key", ""), self._key):
                return _json({"error": "missing or wrong x-api-key"}, 401)
            record = self.get(parts[1])
            return _json(record, 200) if record else _json({"error": "unknown customer"}, 404)
        return _json({"error": "not found"}, 404)

    def serve(self, host: str, port: int) -> CustomerApi:
        self._server = make_server(host, port, self.wsgi, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="customer-api").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")
