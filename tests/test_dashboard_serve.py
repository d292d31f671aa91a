"""`oneeye dashboard run` serves with the production server (gevent), over TLS when asked."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.dashboard_helpers import Signer, make_settings
from tests.net_support import free_port
from tests.paths import REPO
from tests.wait import wait_until

pytestmark = pytest.mark.slow


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


def test_default_run_is_gevent_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    settings = make_settings(tmp_path, Signer(), tls_cert=cert, tls_key=key)
    values = json.loads(settings.model_dump_json())
    del values["async_mode"]  # the command's default: the production server
    config = tmp_path / "dashboard.yaml"
    config.write_text(yaml.safe_dump(values))
    port = free_port()
    log = tmp_path / "dashboard.log"
    proc = subprocess.Popen([sys.executable, "-m", "oneeye.cli", "dashboard", "run", "--port",
                             str(port), "--config", str(config)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"

    def healthz() -> dict[str, object] | None:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            return dict(requests.get(url + "/healthz", verify=str(cert), timeout=2).json())
        except requests.ConnectionError:
            return None

    try:
        health = wait_until(healthz, 60, "the dashboard over https")
        assert health["async_mode"] == "gevent"
        # the dashboard is the TLS endpoint here, so it tells browsers to stay on https
        page = requests.get(url + "/login", verify=str(cert), timeout=5)
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
        # Socket.IO's handshake is served by the same TLS server
        sio = requests.get(url + "/socket.io/?EIO=4&transport=polling", verify=str(cert),
                           timeout=5)
        assert sio.status_code == 200 and '"sid"' in sio.text
        with pytest.raises(requests.ConnectionError):  # no plain http on that port
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
