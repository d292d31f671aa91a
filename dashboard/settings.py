"""Dashboard settings (``ONEEYE_DASHBOARD__…`` env, a YAML/JSON file, CLI flags).

The Flask secret key is never in the repo: it comes from ``secret_key``, from
``secret_key_file``, or is generated at first start into ``<var_dir>/secret_key``
(mode 0600) so sessions survive restarts.

``session_cookie_secure`` defaults to True (cookies only over HTTPS, which is how
the dashboard runs behind a load balancer). The local stack serves plain HTTP on
127.0.0.1 and turns it off explicitly; a browser would otherwise never send the
session cookie back and every login would appear to fail.

``alert_outbox_path`` was called ``outbox_path`` until 0.1: the old key is still
accepted for one release, with a ``DeprecationWarning`` (the edge's event outbox is
a different thing).
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator

from oneeye.config import StrictModel


class CloudSettings(StrictModel):
    """The cloud resources the management screens use, with the dashboard's own AWS
    credentials (least privilege: cloud/README.md lists the actions)."""

    bucket: str = Field("", description="ONEEYE_BUCKET: customer photos go to "
                        "uploads/customers/, verdicts come from status/")
    cases_table: str = Field("", description="CASES_TABLE: case list and close")
    indexer_queue_url: str = Field("", description="INDEXER_QUEUE_URL: removal commands "
                                   "(closed case, removed customer)")
    customer_api_url: str = Field("", description="CUSTOMER_API_URL: the bank's customer "
                                  "directory; a customer id added on the Customers page must "
                                  "be in it (empty: ids are not checked, no names shown)")
    customer_api_key_file: Path | None = Field(None, description="File holding the customer "
                                               "API key (sent as x-api-key)")
    agencies_table: str = Field("", description="AGENCIES_TABLE: the agencies an agency "
                                "user may belong to (checked by `oneeye dashboard add-user`)")


class DashboardSettings(StrictModel):
    var_dir: Path = Field(Path("var/dashboard"), description="State directory (db, secret key)")
    database_url: str = Field("", description="sqlite:///path or postgresql://… (psycopg 3, "
                              "as postgresql+psycopg://…); empty: sqlite under var_dir")
    secret_key: SecretStr | None = Field(None, description="Flask session key (else file)")
    secret_key_file: Path | None = Field(None, description="File holding the session key")
    allowed_topics: list[str] = Field(default_factory=list,
                                      description="SNS topic ARNs accepted on /sns")
    pinned_certs: dict[str, Path] = Field(
        default_factory=dict,
        description="SigningCertURL → local PEM file trusted without fetching (local stack only)")
    confirm_hosts: list[str] = Field(
        default_factory=list,
        description="Extra host:port allowed for SubscribeURL (the local stack's SNS)")
    session_cookie_secure: bool = Field(True, description="Send the session cookie over "
                                        "HTTPS only (turn off only for local http)")
    retention_days: int = Field(30, ge=1, le=3650, description="Events older are purged")
    event_ids_retention_days: int = Field(400, ge=1, le=36500, description="Ids of purged "
                                          "events are kept this long (never less than "
                                          "retention_days): a replay is still a duplicate")
    sns_max_age_s: float = Field(3600, gt=0, le=7 * 86400, description="SNS messages whose "
                                 "signed Timestamp is older are refused (replays); keep it "
                                 "above the subscription's longest retry")
    offline_after_s: float = Field(90, gt=0, description="No longer decides anything: a "
                                   "device is offline when the cloud says so (device_offline; "
                                   "its OFFLINE_AFTER_S); still accepted and shown to the desk")
    message_queue: str | None = Field(None, description="redis://… to share broadcasts "
                                      "between dashboard processes")
    message_queue_channel: str = Field("oneeye-dashboard", min_length=1, description=
                                       "Pub/sub channel (Redis channels ignore the db number)")
    async_mode: Literal["threading", "gevent"] = Field(
        "gevent", description="gevent: the production server (gevent's WSGI server, many "
        "sockets per process; `oneeye dashboard run`); threading: Werkzeug's development "
        "server, for tests and debugging only")
    websocket_compression: bool = Field(
        False, description="Accept permessage-deflate on Socket.IO websockets. Off: desk "
        "events are ~1 KB and compressing each one per client doubles the server's CPU per "
        "delivery (bench/fanout.py) for nothing on a branch LAN")
    login_attempts: int = Field(5, ge=1, description="Failed logins allowed per account and "
                                "window; then that account waits (others are not affected)")
    login_ip_attempts: int = Field(50, ge=1, description="Failed logins allowed per client "
                                   "address and window: a ceiling far above login_attempts, "
                                   "since a whole branch may share one address")
    login_window_s: float = Field(300, gt=0, le=86_400, description="Login rate-limit window")
    login_store: str | None = Field(None, pattern=r"^(redis|rediss|unix)://",
                                    description="redis://… for the login counters; "
                                    "empty: message_queue when it is redis://, else the "
                                    "dashboard database (all processes on it agree)")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list, description="Addresses/networks of reverse proxies whose "
        "X-Forwarded-For/-Proto/-Host/-Port/-Prefix are believed (werkzeug ProxyFix); "
        "forwarded headers from anyone else are ignored")
    proxy_hops: int = Field(1, ge=1, le=5, description="Trusted proxies in front of the "
                            "dashboard, each appending to X-Forwarded-For")
    tls_cert: Path | None = Field(None, description="PEM certificate chain: serve HTTPS "
                                  "directly (else terminate TLS at a proxy)")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert")
    alert_outbox_path: Path | None = Field(
        None, description="Local-mode alert outbox: the email/SMS the local stack would have "
        "sent (JSON lines file or directory of them); the old key outbox_path still works")
    history_limit: int = Field(200, ge=1, le=5000, description="Max events per API page")
    it_alert_topic_arn: str = Field("", description="No longer used: branch IT's email "
                                    "about a camera transition is sent by the cloud "
                                    "(template ItAlertTopic); still accepted so older "
                                    "configurations load (a warning at start)")
    visit_window_s: float = Field(900, gt=0, description="Arrivals of one customer less "
                                  "than this apart are one visit (one card)")
    card_ttl_s: float = Field(1800, gt=0, le=86_400, description="A visit's card leaves the "
                              "desk (for History) this long after its last sighting, or "
                              "when marked served")
    known_sites: list[str] = Field(default_factory=list, description="Sites a user may be "
                                   "given before any camera reports from them (besides the "
                                   "sites of cameras and users)")
    cloud: CloudSettings = Field(default_factory=CloudSettings, description=
                                 "Where the management screens find the cloud (empty: "
                                 "screens say they are not connected)")

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "outbox_path" in data:
            warnings.warn("dashboard setting outbox_path is now alert_outbox_path; the old "
                          "name goes in the next release", DeprecationWarning, stacklevel=2)
            data = dict(data)
            old = data.pop("outbox_path")
            data.setdefault("alert_outbox_path", old)
        return data

    @model_validator(mode="after")
    def _tls_pair(self) -> DashboardSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self

    def resolved_login_store(self) -> str | None:
        """The Redis URL of the login counters, or None for the dashboard database."""
        for url in (self.login_store, self.message_queue):
            if url and url.startswith(("redis://", "rediss://", "unix://")):
                return url
        return None

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'dashboard.sqlite3'}"

    def resolved_secret_key(self) -> str:
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.secret_key_file or self.var_dir / "secret_key"
        if path.is_file():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key

    def pinned_cert_bytes(self) -> dict[str, bytes]:
        return {url: Path(p).read_bytes() for url, p in self.pinned_certs.items()}
