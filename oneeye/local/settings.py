"""Settings of the local stack (``oneeye up``): ports, state directory, demo data.

Every port is configurable (``--<name>-port`` or ``ONEEYE_LOCAL__PORTS__<NAME>``);
:func:`check_ports` fails before anything starts, naming the port and the setting
that controls it, so a second ``oneeye up`` never half-starts.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from pydantic import Field, SecretStr

from oneeye.config import StrictModel
from oneeye.errors import ConfigError
from oneeye.types import Id

REPO = Path(__file__).resolve().parents[2]


class PortSettings(StrictModel):
    mqtt: int = Field(18830, ge=1, le=65535, description="embedded MQTT broker (IoT Core)")
    moto: int = Field(5055, ge=1, le=65535, description="moto server (S3, SQS, SNS, "
                      "DynamoDB), on 127.0.0.1 only whatever host is")
    http_api: int = Field(8080, ge=1, le=65535, description="HTTP API stand-in + mobile page")
    dashboard: int = Field(8000, ge=1, le=65535, description="teller dashboard")
    customer_api: int = Field(8081, ge=1, le=65535, description="demo customer API")
    smtp: int = Field(8025, ge=1, le=65535, description="SMTP sink for alert emails")


class SnsDeliverySettings(StrictModel):
    first_retry_s: float = Field(0.5, gt=0, le=60, description="backoff after a failed POST")
    max_retry_s: float = Field(20.0, gt=0, le=3600, description="backoff ceiling")
    give_up_after_s: float = Field(86_400.0, gt=0, description="stop retrying a delivery after "
                                   "this long (SNS retries for hours with a custom policy)")
    signature_version: str = Field("2", pattern=r"^[12]$", description="1 = SHA1, 2 = SHA256")
    timeout_s: float = Field(5.0, gt=0, le=60)


class RegisteredDevice(StrictModel):
    """A device registry entry: the IoT thing attributes a device's events are checked
    against (its events may name only this site and these cameras)."""

    site_id: Id = Field(description="the site this thing stands at")
    cameras: list[Id] = Field(min_length=1, description="camera ids this thing may report")


class LocalSettings(StrictModel):
    host: str = Field("127.0.0.1", description="bind address of every local service")
    public_host: str | None = Field(None, description="host name printed in URLs (e.g. the "
                                    "LAN address for a phone); default: host")
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    var_dir: Path = Field(Path("var/local"), description="state: SQLite, outbox, keys")
    keep_state: bool = Field(True, description="record what changes the AWS stand-ins' "
                             "state (cases, agency tokens, galleries, counters) under var_dir "
                             "and replay it at the next start; false: start empty")
    template: Path = Field(REPO / "cloud" / "template.yaml", description="SAM template whose "
                           "IoT rules and HTTP API routes the stack follows")
    data_dir: Path = Field(default_factory=lambda: Path(os.environ.get(
        "ONEEYE_DATA", REPO.parent / "shared" / "data")), description="demo photos "
        "(default $ONEEYE_DATA, else ../shared/data beside the repo)")
    mqtt_url: str | None = Field(None, description="use this broker instead of the embedded "
                                 "one, e.g. mqtt://127.0.0.1:1883")
    site_id: str = Field("site-1", description="the demo branch")
    demo_customers: int = Field(12, ge=1, le=80, description="seeded demo customers")
    enrol_customers: bool = Field(True, description="upload demo customer photos so the "
                                  "indexer builds the customers gallery")
    dashboard: bool = Field(True, description="run the dashboard")
    demo_password: SecretStr | None = Field(None, description="password of the dashboard's "
                                            "demo user (default: generated at each start)")
    dashboard_filter_site: bool = Field(False, description="subscribe the dashboard with a "
                                        "FilterPolicy on site_id (as the template does)")
    sns_endpoints: list[str] = Field(default_factory=list, description="extra HTTP(S) "
                                     "subscribers of the desk topic (SNS-style test endpoints)")
    alert_email: str | None = Field("duty-officer@branch.example", description="demo email "
                                    "subscription on the alerts topic (empty: none)")
    alert_sms: str | None = Field("+15555550100", description="demo SMS subscription on the "
                                  "alerts topic (empty: none)")
    edge_source: str | None = Field(None, description="run the edge on this video/camera")
    edge_args: list[str] = Field(default_factory=list, description="extra `oneeye edge` args")
    edge_device_id: Id = Field("edge-local", description="thing name of the stack's own edge "
                               "(registered at site_id with the edge's camera)")
    devices: dict[Id, RegisteredDevice] = Field(
        default_factory=dict, description="more devices for the registry (thing name → "
        "site_id, cameras): events from unregistered things are rejected")
    sns: SnsDeliverySettings = Field(default_factory=SnsDeliverySettings)
    ports: PortSettings = Field(default_factory=PortSettings)

    @property
    def url_host(self) -> str:
        return self.public_host or ("127.0.0.1" if self.host in ("0.0.0.0", "") else self.host)

    def url(self, port_name: str, path: str = "") -> str:
        return f"http://{self.url_host}:{getattr(self.ports, port_name)}{path}"


#: The CLI flag that sets each port, for error messages.
PORT_FLAGS = {"mqtt": "--mqtt-port", "moto": "--moto-port", "http_api": "--http-port",
              "dashboard": "--dashboard-port", "customer_api": "--customer-api-port",
              "smtp": "--smtp-port"}


def check_ports(settings: LocalSettings, names: list[str]) -> None:
    """Raise ConfigError naming every port in ``names`` that cannot be bound."""
    problems = []
    seen: dict[int, str] = {}
    for name in names:
        port = getattr(settings.ports, name)
        if port in seen:
            problems.append(f"port {port} is set for both ports.{seen[port]} and ports.{name}")
            continue
        seen[port] = name
        reason = port_problem(settings.host, port)
        if reason:
            problems.append(f"port {port} ({reason}) is needed for ports.{name}: free it or "
                            f"choose another with {PORT_FLAGS[name]} or "
                            f"ONEEYE_LOCAL__PORTS__{name.upper()}")
    if problems:
        raise ConfigError("cannot start the local stack:\n  " + "\n  ".join(problems))


def port_problem(host: str, port: int) -> str | None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "already in use"
            return exc.strerror or str(exc)
    return None
