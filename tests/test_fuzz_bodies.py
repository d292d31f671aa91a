"""Every HTTP endpoint answers a hostile body with a 4xx, never a 5xx or a traceback.

Real servers on loopback ports: the dashboard (its SNS endpoint included), the local
HTTP API (the Lambdas of the template, the S3 upload proxy with the POST-policy check in
front of moto, the SNS confirm route) and the demo customer API. Each gets the same
bodies: deep nesting, wrong JSON types, huge strings, bytes that are not text, and
content types that do not match.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from oneeye.cloud.agencies import Agencies
from tests.dashboard_helpers import PASSWORD, Signer, add_user, app_for, csrf_from
from tests.net_support import free_port
from tests.paths import REPO

pytestmark = pytest.mark.timeout(300)

DEEP = 100_000
BODIES: dict[str, tuple[bytes, str]] = {
    "deep_list": (b"[" * DEEP + b"]" * DEEP, "application/json"),
    "deep_object": (b'{"a":' * DEEP + b"1" + b"}" * DEEP, "application/json"),
    "unclosed_nesting": (b"[" * DEEP, "application/json"),
    "list": (b"[1, 2, 3]", "application/json"),
    "number": (b"42", "application/json"),
    "null": (b"null", "application/json"),
    "wrong_types": (json.dumps({
        "Type": 5, "Message": [], "Timestamp": 12, "TopicArn": {"a": 1}, "name": ["x"],
        "case_id": 7, "age": {"y": 1}, "content_type": None, "size": "big",
        "username": ["root"], "password": {"p": 1}, "csrf_token": 3}).encode(),
        "application/json"),
    "sns_shaped": (json.dumps({
        "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:x", "Message":
        {"schema": "oneeye.desk/1"}, "Timestamp": "2019-01-01T00:00:00Z",
        "Signature": "!!", "SignatureVersion": "9", "SigningCertURL": 5}).encode(),
        "text/plain; charset=UTF-8"),
    "huge_string": (json.dumps({"name": "x" * 3_000_000, "Message": "y" * 3_000_000})
                    .encode(), "application/json"),
    "not_text": (b"\xff\xfe\x00\x81garbage\x00" * 100, "application/json"),
    "empty": (b"", "application/json"),
    "xml": (b"<?xml version='1.0'?><a><b/></a>", "application/xml"),
    "form": (b"username=a&username=b&password=&csrf_token=x&" + b"k=v&" * 5000,
             "application/x-www-form-urlencoded"),
    "bad_multipart": (b"--xx\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
                      "multipart/form-data; boundary=xx"),
    "multipart_no_boundary": (b"junk", "multipart/form-data"),
}


def _serve(app: Any) -> tuple[str, Any]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("dash")
    app = app_for(tmp, Signer())
    add_user(app, "alice", ["branch-1"])
    url, server = _serve(app)
    session = requests.Session()
    token = csrf_from(session.get(f"{url}/login", timeout=10).text)
    session.post(f"{url}/login", data={"username": "alice", "password": PASSWORD,
                                       "csrf_token": token}, timeout=10)
    csrf = csrf_from(session.get(f"{url}/", timeout=10).text)
    try:
        yield {"url": url, "session": session, "csrf": csrf}
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def cloud_api(moto_server: str) -> Iterator[dict[str, Any]]:
    """The local HTTP API over the template's routes, and the guarded S3 behind its proxy."""
    import os

    from oneeye.cloud.dal.resources import ensure_resources
    from oneeye.local import template as tpl
    from oneeye.local.customer_api import CustomerApi
    from oneeye.local.httpapi import HttpApi
    from oneeye.local.lambdas import Lambdas
    from oneeye.local.moto_server import MotoServer

    env = ensure_resources("fuzz")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    guarded = MotoServer("127.0.0.1", free_port()).start()
    template = tpl.load(REPO / "cloud" / "template.yaml")
    api = HttpApi(template.routes, Lambdas(template.functions),
                  static_dir=REPO / "mobile_upload", moto_url=guarded.url,
                  upload_bucket=env["ONEEYE_BUCKET"],
                  confirm=lambda arn, token: None, unsubscribe=lambda arn: False)
    port = free_port()
    api.serve("127.0.0.1", port)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-customers-{port}.sqlite3"
    customers = CustomerApi(tmp, api_key="k3y", public_url="http://127.0.0.1")
    cport = free_port()
    customers.serve("127.0.0.1", cport)
    token = Agencies(env["AGENCIES_TABLE"]).add("Fuzz Police")[0]
    try:
        yield {"url": f"http://127.0.0.1:{port}", "token": token,
               "customers": f"http://127.0.0.1:{cport}"}
    finally:
        customers.stop()
        api.stop()
        guarded.stop()
        tmp.unlink(missing_ok=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: Endpoints whose body is read; GETs that ignore a body only must not fail (< 500).
Endpoint = tuple[str, str, dict[str, str], Any, bool]


def _endpoints(dash: dict[str, Any], cloud: dict[str, Any]) -> list[Endpoint]:
    """(method, url, headers, client, reads_body) of every endpoint."""
    d, c, cust = dash["url"], cloud["url"], cloud["customers"]
    auth = {"Authorization": f"Bearer {cloud['token']}"}
    csrf = {"X-CSRF-Token": dash["csrf"]}
    event = "0190aaaa-0000-7000-8000-000000000000"
    return [
        ("POST", f"{d}/sns", {"x-amz-sns-message-type": "Notification"}, requests, True),
        ("POST", f"{d}/sns", {}, requests, True),
        ("POST", f"{d}/login", {}, requests, True),
        ("POST", f"{d}/logout", {}, requests, True),
        ("POST", f"{d}/api/events/{event}/ack", csrf, dash["session"], True),
        ("GET", f"{d}/api/events?limit=abc&after=" + "z" * 5000, {}, dash["session"], False),
        ("GET", f"{d}/history?q=" + "%00" * 100, {}, dash["session"], False),
        ("POST", f"{c}/api/uploads", auth, requests, True),
        ("POST", f"{c}/api/uploads", {}, requests, True),
        ("GET", f"{c}/api/uploads/" + "u" * 300, auth, requests, True),
        ("GET", f"{c}/api/cases", auth, requests, False),
        ("POST", f"{c}/api/cases/MP-2026-0001/close", auth, requests, True),
        ("POST", f"{c}/s3-upload/fuzz-data", {}, requests, True),
        ("GET", f"{c}/sns/confirm?Action=ConfirmSubscription&Token=" + "t" * 5000, {},
         requests, True),
        ("POST", f"{c}/api/nowhere", {}, requests, True),
        ("GET", f"{cust}/customers/C-1", {"x-api-key": "k3y"}, requests, False),
        ("POST", f"{cust}/customers/C-1", {"x-api-key": "k3y"}, requests, True),
    ]


@pytest.mark.parametrize("body_name", list(BODIES))
def test_every_endpoint_answers_a_hostile_body_with_a_4xx(
        dashboard: dict[str, Any], cloud_api: dict[str, Any], body_name: str,
        caplog: pytest.LogCaptureFixture) -> None:
    body, ctype = BODIES[body_name]
    failures = []
    with caplog.at_level(logging.INFO):
        for method, url, headers, client, reads_body in _endpoints(dashboard, cloud_api):
            resp = client.request(method, url, data=body, timeout=60,
                                  headers={"Content-Type": ctype, **headers})
            ok = 400 <= resp.status_code < 500 if reads_body else resp.status_code < 500
            if not ok:
                failures.append(f"{method} {url[:70]} → {resp.status_code} {resp.text[:160]}")
    assert failures == []
    tracebacks = [r.getMessage()[:200] for r in caplog.records
                  if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == []


#: Values a form or a script can send that no column or calendar holds: the ends of
#: the calendar east and west of UTC, integers past 64 bits and past Python's parsing
#: limit, negatives, and JSON numbers that are not integers.
EARLY, LATE = "0001-01-01T00:00:00%2B05:00", "9999-12-31T23:59:59-05:00"
HUGE, ENORMOUS = str(10**30), "9" * 5000
OUT_OF_RANGE_QUERIES = [
    f"/api/events?since={EARLY}", f"/api/events?until={LATE}",
    f"/api/events?since={LATE}", f"/api/events?limit={HUGE}", f"/api/events?offset={HUGE}",
    f"/api/events?limit={ENORMOUS}", "/api/events?offset=-1", "/api/events?limit=0",
    f"/api/events?limit=-{HUGE}", f"/api/arrivals?limit={HUGE}",
    f"/history?since={EARLY}", f"/history?until={LATE}", f"/history?offset={HUGE}",
    f"/history?limit={HUGE}", "/history?since=0001-01-01T00:00&tz=Asia/Kolkata",
    "/history?until=9999-12-31T23:59&tz=America/New_York",
    "/history?since=0001-01-01&tz=Asia/Kolkata", "/history?until=9999-12-31&tz=Pacific/Kiritimati",
    f"/history.csv?since={EARLY}", f"/history.csv?until={LATE}", f"/people/C-1?since={EARLY}",
    f"/history/cameras?until={LATE}",
]
OUT_OF_RANGE_ACKS = [
    b'{"kind": "missing_person_sighted", "subject": "MP-1", "upto_seq": ' + HUGE.encode() + b"}",
    b'{"kind": "missing_person_sighted", "subject": "MP-1", "upto_seq": -' + HUGE.encode() + b"}",
    b'{"kind": "missing_person_sighted", "subject": "MP-1", "upto_seq": -1}',
    b'{"kind": "missing_person_sighted", "subject": "MP-1", "upto_seq": 1e400}',
    b'{"kind": "missing_person_sighted", "subject": "MP-1", "upto_seq": NaN}',
    b'{"kind": "missing_person_sighted", "subject": "MP-1", "upto_seq": true}',
    b'{"kind": "device_offline", "subject": "cam-1", "upto_seq": 9223372036854775808}',
]


@pytest.mark.parametrize("query", OUT_OF_RANGE_QUERIES)
def test_an_out_of_range_date_or_number_in_a_query_is_a_4xx(
        dashboard: dict[str, Any], query: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        resp = dashboard["session"].get(dashboard["url"] + query, timeout=30)
    assert 400 <= resp.status_code < 500, resp.text[:300]
    assert [r.getMessage()[:200] for r in caplog.records if r.exc_info] == []


@pytest.mark.parametrize("body", OUT_OF_RANGE_ACKS)
def test_an_out_of_range_seq_in_an_acknowledgement_is_a_4xx(
        dashboard: dict[str, Any], body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        resp = dashboard["session"].post(
            f"{dashboard['url']}/api/alerts/ack", data=body, timeout=30,
            headers={"Content-Type": "application/json", "X-CSRF-Token": dashboard["csrf"]})
    assert 400 <= resp.status_code < 500, resp.text[:300]
    assert [r.getMessage()[:200] for r in caplog.records if r.exc_info] == []


def test_the_largest_seq_a_column_holds_is_an_ordinary_answer(
        dashboard: dict[str, Any]) -> None:
    """The edge just inside the range: nothing to acknowledge (404), not a refusal."""
    resp = dashboard["session"].post(
        f"{dashboard['url']}/api/alerts/ack", timeout=30,
        json={"kind": "missing_person_sighted", "subject": "MP-1", "upto_seq": 2**63 - 1},
        headers={"X-CSRF-Token": dashboard["csrf"]})
    assert resp.status_code == 404
    page = dashboard["session"].get(f"{dashboard['url']}/api/events?offset={2**63 - 1}",
                                    timeout=30)
    assert page.status_code == 200 and page.json()["events"] == []
