"""No back door into the local stack's AWS stand-in (moto).

The phone page's ``/s3-upload/`` proxy forwards only a presigned multipart POST to the
upload bucket; moto's own admin API (``/moto-api/``: the recorder's download and upload of
the whole state, reset) is closed to anyone without the stack's per-start secret; moto
grants no web origin; and moto listens on 127.0.0.1 even when the stack is opened to
another address for a phone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from oneeye import aws
from oneeye.local import template as tpl
from oneeye.local.httpapi import HttpApi
from oneeye.local.lambdas import Lambdas
from oneeye.local.moto_server import MotoServer
from tests.net_support import free_port
from tests.paths import REPO
from tests.wait import wait_until

pytestmark = pytest.mark.timeout(180)

EVIL = "http://evil.example"


@dataclass
class Gated:
    moto: MotoServer
    api: str
    bucket: str


@pytest.fixture
def gated(cloud_env: dict[str, str]) -> Iterator[Gated]:
    """The stack's own moto server (gate and POST-policy guard) behind the HTTP API proxy.

    moto's backends are process-wide, so this server sees ``cloud_env``'s resources."""
    moto = MotoServer("127.0.0.1", free_port()).start()
    template = tpl.load(REPO / "cloud" / "template.yaml")
    api = HttpApi(template.routes, Lambdas(template.functions), static_dir=REPO / "mobile_upload",
                  moto_url=moto.url, upload_bucket=cloud_env["ONEEYE_BUCKET"],
                  confirm=lambda arn, token: None, unsubscribe=lambda arn: False)
    port = free_port()
    api.serve("127.0.0.1", port)
    try:
        yield Gated(moto, f"http://127.0.0.1:{port}", cloud_env["ONEEYE_BUCKET"])
    finally:
        api.stop()
        moto.stop()


def _canary(bucket: str) -> None:
    aws.client("s3").put_object(Bucket=bucket, Key="canary.txt", Body=b"still here")


def _canary_kept(bucket: str) -> bool:
    body = aws.client("s3").get_object(Bucket=bucket, Key="canary.txt")["Body"].read()
    return bool(body == b"still here")


MULTIPART = {"Content-Type": "multipart/form-data; boundary=xyz"}
FORM = b"--xyz\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--xyz--\r\n"


@pytest.mark.parametrize("path", ["moto-api/recorder/download-recording",
                                  "moto-api/recorder/upload-recording",
                                  "moto-api/recorder/start-recording",
                                  "moto-api/reset", "moto-api/data.json", "moto-api/",
                                  "MOTO-API/reset", "/moto-api/reset"])
@pytest.mark.parametrize("headers", [{}, MULTIPART], ids=["plain", "multipart"])
def test_the_proxy_answers_moto_admin_paths_with_a_plain_404_and_changes_nothing(
        gated: Gated, path: str, headers: dict[str, str]) -> None:
    _canary(gated.bucket)
    resp = requests.post(f"{gated.api}/s3-upload/{path}", headers=headers, timeout=10,
                         data=b'{"method": "DELETE"}' if not headers else FORM)
    assert resp.status_code == 404, resp.text[:300]
    assert resp.text == "not found"  # nothing of moto's (no recording, no state)
    assert _canary_kept(gated.bucket)


def test_the_proxy_forwards_nothing_but_a_multipart_post_to_the_upload_bucket(
        gated: Gated) -> None:
    other = f"{gated.bucket}-other"
    aws.client("s3").create_bucket(Bucket=other)
    up = f"{gated.api}/s3-upload/{gated.bucket}"
    refused = [
        requests.post(f"{gated.api}/s3-upload/{other}", headers=MULTIPART, data=FORM),
        requests.post(f"{up}/some/key.jpg", headers=MULTIPART, data=FORM),  # a key path
        requests.post(f"{up}-other", headers=MULTIPART, data=FORM),  # a prefix of another
        requests.get(up), requests.get(f"{up}/canary.txt"), requests.head(up),
        requests.put(f"{up}/canary.txt", data=b"overwritten"),
        requests.delete(f"{up}/canary.txt"), requests.options(up),
        requests.post(up, data=b"<Delete/>", headers={"Content-Type": "application/xml"}),
        requests.post(up, data={"key": "k"}),  # application/x-www-form-urlencoded
        requests.post(up, data=b"", headers={"Content-Type": "text/plain"}),
        requests.post(f"{gated.api}/s3-upload/", headers=MULTIPART, data=FORM),
    ]
    for resp in refused:
        assert resp.status_code == 404, (resp.request.method, resp.request.url, resp.text)
    _canary(gated.bucket)
    requests.delete(f"{up}/canary.txt", timeout=5)
    assert _canary_kept(gated.bucket)


@pytest.mark.parametrize("body, ctype", [
    (b"", "multipart/form-data; boundary=xyz"),                      # empty
    (b"junk without any boundary", "multipart/form-data"),           # no boundary at all
    (b"--xyz\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\nnot base64",
     "multipart/form-data; boundary=xyz"),                           # torn off mid-part
    (FORM, "multipart/form-data; boundary=xyz"),                     # no policy, no file
    (b"--xyz\r\n\xff\xfe\x00\r\n--xyz--", "multipart/form-data; boundary=xyz"),  # binary junk
    (b"--" + b"a" * 200 + b"\r\n", "multipart/form-data; boundary=" + "a" * 200),
    (b"{}", "application/json"), (b"a=1&b=2", "application/x-www-form-urlencoded"),
    (b"\x00\xff", ""),
], ids=["empty", "no-boundary", "torn", "no-policy", "binary", "long-boundary", "json",
        "urlencoded", "no-type"])
@pytest.mark.parametrize("where", ["", "/uploads/missing/MP-1/x.jpg"], ids=["bucket", "key"])
def test_a_malformed_upload_post_gets_a_4xx_never_a_500_or_a_traceback(
        gated: Gated, body: bytes, ctype: str, where: str) -> None:
    """To the bucket (the POST-policy guard refuses it) or to a key path (moto itself used
    to crash there with a 500 and its traceback)."""
    resp = requests.post(f"{gated.api}/s3-upload/{gated.bucket}{where}", data=body,
                         headers={"Content-Type": ctype}, timeout=10)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    assert "Traceback" not in resp.text and "File \"" not in resp.text


def test_moto_admin_api_needs_the_stacks_secret(gated: Gated) -> None:
    _canary(gated.bucket)
    for path in ("/moto-api/reset", "/moto-api/recorder/download-recording",
                 "/moto-api/recorder/upload-recording", "//moto-api/reset"):
        resp = requests.post(f"{gated.moto.url}{path}", timeout=10, data=b"")
        assert resp.status_code == 404, (path, resp.text[:200])
        wrong = requests.post(f"{gated.moto.url}{path}", timeout=10,
                              headers={"X-OneEye-Moto-Admin": "guess"})
        assert wrong.status_code == 404, path
    assert requests.post(f"{gated.moto.url}/moto-api/reset", timeout=10,
                         headers={"Host": "motoapi.amazonaws.com"}).status_code == 404
    assert _canary_kept(gated.bucket)
    # the stack's own code, holding the secret, still reaches it (read-only here)
    own = requests.get(f"{gated.moto.url}/moto-api/data.json", headers=gated.moto.admin_headers,
                       timeout=10)
    assert own.status_code == 200 and "s3" in own.json()


def test_moto_grants_no_foreign_origin(gated: Gated) -> None:
    aws.client("s3").put_bucket_cors(Bucket=gated.bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "PUT", "POST"]}]})
    _canary(gated.bucket)
    asks = [
        requests.options(f"{gated.moto.url}/{gated.bucket}/canary.txt", timeout=10, headers={
            "Origin": EVIL, "Access-Control-Request-Method": "GET"}),
        requests.get(f"{gated.moto.url}/{gated.bucket}/canary.txt", timeout=10,
                     headers={"Origin": EVIL}),
        requests.post(f"{gated.moto.url}/", timeout=10, headers={"Origin": EVIL},
                      data={"Action": "ListQueues"}),
        requests.options(f"{gated.moto.url}/", timeout=10, headers={
            "Origin": EVIL, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-amz-target"}),
    ]
    for resp in asks:
        granted = {k: v for k, v in resp.headers.items()
                   if k.lower().startswith("access-control-")}
        assert granted == {}, (resp.request.method, resp.request.url, granted)


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


@pytest.mark.slow
def test_moto_listens_on_loopback_only_when_the_stack_is_opened_to_another_address(
        tmp_path: Path, data_dir: Path) -> None:
    """``--host`` (what a phone on the LAN needs) moves every service but moto. 127.0.0.2
    stands in for the LAN address: it is loopback too, so no traffic leaves the machine."""
    ports = {n: free_port() for n in ("mqtt", "moto", "http", "customer-api", "smtp")}
    argv = [sys.executable, "-m", "oneeye.cli", "up", "--var-dir", str(tmp_path / "var"),
            "--host", "127.0.0.2", "--public-host", "127.0.0.2", "--no-dashboard",
            "--duration", "120"]
    for name, p in ports.items():
        argv += [f"--{name}-port", str(p)]
    env = {**os.environ, "ONEEYE_LOCAL__ENROL_CUSTOMERS": "false",
           "ONEEYE_LOCAL__DEMO_CUSTOMERS": "1", "ONEEYE_LOCAL__DATA_DIR": str(data_dir)}
    env.pop("AWS_ENDPOINT_URL", None)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"oneeye up exited:\n{log.read_text()[-3000:]}")
            return (tmp_path / "var" / "stack.json").is_file()

        wait_until(up, 150, "the stack to start", interval_s=0.2,
                   context=lambda: log.read_text()[-3000:])
        assert _listening("127.0.0.2", ports["http"])       # the phone page: where asked
        assert _listening("127.0.0.1", ports["moto"])       # moto: loopback
        assert not _listening("127.0.0.2", ports["moto"])   # and nowhere else
        stub = requests.post(f"http://127.0.0.2:{ports['http']}/s3-upload/moto-api/reset",
                             timeout=10)
        assert stub.status_code == 404
    finally:
        proc.terminate()
        proc.wait(60)
