# Long module: one start/stop sequence of every local stand-in in dependency order; split,
# the order (moto → broker → functions → dashboard → edge) would be spread over files.
"""``oneeye up``: start every local stand-in, wire them like the template, stop cleanly.

Start order matters: moto first (everything keeps state there), then the broker,
the resources of the template (``oneeye.cloud.dal.resources``), the consumers (SNS
delivery, outbox, indexer poller, rules router, HTTP API), the demo data, and
last the children (dashboard, edge) that talk to all of it. :meth:`stop` runs
the same list backwards; every step is guarded so one failure never leaves
threads or children behind.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oneeye import aws, signing
from oneeye.cloud.agencies import Agencies
from oneeye.cloud.dal.gallery_store import ensure_signed
from oneeye.cloud.dal.resources import ensure_resources
from oneeye.cloud.dal.store import Bucket
from oneeye.cloud.devices import register
from oneeye.edge.settings import DEFAULT_CAMERA_ID
from oneeye.errors import ConfigError
from oneeye.local import template as tpl
from oneeye.local.alert_outbox import ALERT_OUTBOX_FILE, AlertOutbox, SmtpSink
from oneeye.local.broker import EmbeddedBroker
from oneeye.local.children import Child, run_once
from oneeye.local.customer_api import CustomerApi, demo_customers, enrol_photos
from oneeye.local.httpapi import HttpApi
from oneeye.local.inbox import Inbox, intake
from oneeye.local.lambdas import Lambdas
from oneeye.local.moto_server import MotoServer, tap_structured_messages
from oneeye.local.probe import wait_http
from oneeye.local.rules import compile_rules
from oneeye.local.schedules import Schedules
from oneeye.local.settings import REPO, LocalSettings, check_ports
from oneeye.local.sns_delivery import Signer, SnsDelivery
from oneeye.local.sqs_poller import SqsPoller
from oneeye.local.state import drop_stale_gallery_cache, secret_file, write_private
from oneeye.local.workers import INBOX_FILE, SNS_DB_FILE, SNS_DIR, WorkerConfig
from oneeye.types import WATCHLISTS

log = logging.getLogger(__name__)

DEMO_USER = "demo"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing"}


@dataclass
class StackInfo:
    urls: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    demo_user: str = DEMO_USER
    demo_password: str | None = None
    signing_cert: str = ""
    agency_token: str | None = None


class LocalStack:
    def __init__(self, settings: LocalSettings) -> None:
        self.s = settings
        self.var = settings.var_dir.resolve()
        self.info = StackInfo()
        self._stops: list[tuple[str, Callable[[], object]]] = []
        self.children: dict[str, Child] = {}
        self._stopping = threading.Event()
        self.delivery: Any = None
        self._desk_queue_url = ""
        self.gallery_public_key = ""

    # -- start ------------------------------------------------------------------------

    def start(self) -> StackInfo:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self.info

    def _start(self) -> None:
        s = self.s
        ports = ["moto", "http_api", "customer_api", "smtp"]
        ports += [] if s.mqtt_url else ["mqtt"]
        ports += ["dashboard"] if s.dashboard else []
        check_ports(s, ports)
        template = tpl.load(s.template)
        self.var.mkdir(parents=True, exist_ok=True)
        host = "127.0.0.1" if s.host in ("0.0.0.0", "") else s.host
        # moto on loopback only, whatever --host: the LAN reaches S3 via the upload proxy alone.
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{s.ports.moto}", "AWS_REGION": s.region,
               "AWS_DEFAULT_REGION": s.region, **FAKE_CREDENTIALS}
        # Never leak a real AWS profile into the stack: the fake credentials win.
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(var, None)
        os.environ.update(env)
        aws.clear_cache()

        moto = MotoServer("127.0.0.1", s.ports.moto, recording=self.var / "moto-recording.jsonl"
                          if s.keep_state else None).start()
        self._on_stop("moto", moto.stop)

        mqtt_url = s.mqtt_url
        if not mqtt_url:
            broker = EmbeddedBroker(s.ports.mqtt, s.host).start()
            self._on_stop("mqtt broker", broker.stop)
            mqtt_url = f"mqtt://{host}:{s.ports.mqtt}"

        cloud_env = ensure_resources("oneeye-local", cors_origins=[s.url("http_api")])
        moto.agencies_table = cloud_env["AGENCIES_TABLE"]  # POSTs of revoked tokens: 403
        api_key = secret_file(self.var / "customer_api_key")
        # The indexer signs gallery manifests with this key (0600); the edge gets its public half.
        signing_key = self.var / "gallery-signing.key"
        private = signing.ensure_key_file(signing_key)
        self.gallery_public_key = signing.public_b64(private)
        for watchlist in WATCHLISTS:  # galleries kept from before signing (or another key)
            ensure_signed(Bucket(cloud_env["ONEEYE_BUCKET"]), watchlist, private)
        env.update(cloud_env)
        env.update({"CUSTOMER_API_URL": f"http://{host}:{s.ports.customer_api}",
                    "CUSTOMER_API_KEY": api_key, "GALLERY_NOTIFY": mqtt_url,
                    "GALLERY_SIGNING_KEY_FILE": str(signing_key),
                    # the local demo learns from the desk's verdicts on customers (opt-in
                    # in AWS: cloud/template.yaml); ONEEYE_LEARN_WATCHLISTS="" turns it off
                    "LEARN_WATCHLISTS": os.environ.get("ONEEYE_LEARN_WATCHLISTS",
                                                       "customers")})
        os.environ.update(env)
        self.info.env = env

        self._register_devices()

        lambdas = Lambdas(template.functions)  # the HTTP API's and the indexer's handlers
        customers = self._customer_api(api_key)
        self._sns(cloud_env["DESK_TOPIC_ARN"])
        self._alert_outbox(cloud_env["ALERTS_TOPIC_ARN"])
        self._http_api(template, lambdas, moto.url, cloud_env["ONEEYE_BUCKET"])
        self._http_subscribers(cloud_env["DESK_TOPIC_ARN"])  # SubscribeURL is served now
        self._indexer(template, lambdas, cloud_env["INDEXER_QUEUE_URL"])
        timers = Schedules(template.schedules, lambdas).start()   # the device sweep, …
        self._on_stop("schedules", timers.stop)
        self._rules(template, mqtt_url)
        self._workers()
        if s.enrol_customers:
            self._enrol(customers, cloud_env["ONEEYE_BUCKET"])
        if s.dashboard:
            self._dashboard(cloud_env)
        if s.edge_source:
            self._edge(mqtt_url, cloud_env["ONEEYE_BUCKET"])
        self.info.urls.update({"mqtt": mqtt_url, "moto": moto.url,
                               "http_api": s.url("http_api", "/"),
                               "customer_api": s.url("customer_api"),
                               "alert_outbox": str(self.var / ALERT_OUTBOX_FILE)})
        # The token stays out of stack.json; `oneeye upload|case` read it from this 0600 file.
        token_file = self.var / "agency_token"
        self.info.agency_token = self._demo_agency(cloud_env["AGENCIES_TABLE"], token_file)
        token_file.unlink(missing_ok=True)
        if self.info.agency_token:
            write_private(token_file, self.info.agency_token)
        (self.var / "stack.json").write_text(json.dumps(
            {"pid": os.getpid(), "urls": self.info.urls,
             "env": {k: v for k, v in env.items() if "KEY" not in k and "TOKEN" not in k},
             "agency_token_file": str(token_file) if self.info.agency_token else None,
             # `oneeye dashboard add-user` finds the desk's database through this
             "dashboard_config": str(self.var / "dashboard.json") if s.dashboard else None},
            indent=2))

    def _demo_agency(self, table: str, token_file: Path) -> str | None:
        """The phone page's demo agency token: last run's if the restored state still
        accepts it (not revoked), else a new one."""
        try:
            agencies = Agencies(table)
            previous = token_file.read_text().strip() if token_file.is_file() else ""
            if previous and agencies.lookup(previous) is not None:
                return previous
            return agencies.add("Demo Agency")[0]
        except Exception as exc:  # the demo runs on without uploads
            log.warning("could not create the demo agency token: %s", exc)
            return None

    def _register_devices(self) -> None:
        """The device registry (IoT thing attributes on moto, as in AWS): handlers accept
        an edge event only from a registered thing, for its own site and cameras."""
        if self.s.edge_source:   # `oneeye edge --source SRC`: the camera cam-1
            register(self.s.edge_device_id, self.s.site_id, [DEFAULT_CAMERA_ID])
        for thing, device in self.s.devices.items():
            register(thing, device.site_id, device.cameras)

    def _on_stop(self, name: str, fn: Callable[[], object]) -> None:
        self._stops.append((name, fn))

    def _customer_api(self, api_key: str) -> list[Any]:
        customers = demo_customers(self.s.data_dir, self.s.demo_customers)
        api = CustomerApi(self.var / "customers.sqlite3", api_key=api_key,
                          public_url=self.s.url("customer_api"))
        api.seed(customers)
        api.serve(self.s.host, self.s.ports.customer_api)
        self._on_stop("customer API", api.stop)
        return customers

    def _subscribe_queue(self, topic_arn: str, name: str) -> tuple[str, str]:
        sqs, sns = aws.client("sqs"), aws.client("sns")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn,
                      Attributes={"RawMessageDelivery": "false"})
        return str(url), str(arn)

    def _sns(self, desk_arn: str) -> None:
        """The desk topic's SQS tap, and a handle on the SNS delivery file.

        The ``sns-delivery`` child (:meth:`_workers`) polls the tap and delivers; this
        process only subscribes, confirms and unsubscribes in the same SQLite file.
        """
        signer = Signer(self.var / SNS_DIR, self.s.region, self.s.sns.signature_version)
        self.info.signing_cert = str(signer.cert_file)
        self.delivery = SnsDelivery(self.var / SNS_DB_FILE, signer,
                                    confirm_base_url=self.s.url("http_api"),
                                    settings=self.s.sns, deliver=False)
        self._on_stop("SNS delivery handle", self.delivery.stop)
        self._desk_queue_url, _ = self._subscribe_queue(desk_arn, "oneeye-local-desk-http")

    def _http_subscribers(self, desk_arn: str) -> None:
        policy = {"site_id": [self.s.site_id]} if self.s.dashboard_filter_site else None
        wanted: dict[str, dict[str, Any] | None] = {e: None for e in self.s.sns_endpoints}
        if self.s.dashboard:
            host = "127.0.0.1" if self.s.host in ("0.0.0.0", "") else self.s.host
            wanted[f"http://{host}:{self.s.ports.dashboard}/sns"] = policy
        # Subscriptions persist across restarts; drop those of a previous configuration
        # (e.g. another dashboard port) instead of retrying a dead endpoint for a day.
        for sub in self.delivery.subscriptions(desk_arn):
            if sub.endpoint not in wanted:
                log.info("SNS: removing stale subscription %s → %s", sub.arn, sub.endpoint)
                self.delivery.unsubscribe(sub.arn)
        for endpoint, filter_policy in wanted.items():
            self.delivery.subscribe(desk_arn, endpoint, filter_policy)

    def _alert_outbox(self, alerts_arn: str) -> None:
        sink = SmtpSink(self.s.host, self.s.ports.smtp, self.var / "mail").start()
        self._on_stop("SMTP sink", sink.stop)
        url, arn = self._subscribe_queue(alerts_arn, "oneeye-local-alerts-outbox")
        tap_structured_messages(arn)
        sns = aws.client("sns")
        if self.s.alert_email:
            sns.subscribe(TopicArn=alerts_arn, Protocol="email", Endpoint=self.s.alert_email)
        if self.s.alert_sms:
            sns.subscribe(TopicArn=alerts_arn, Protocol="sms", Endpoint=self.s.alert_sms)
        host = "127.0.0.1" if self.s.host in ("0.0.0.0", "") else self.s.host
        outbox = AlertOutbox(self.var / ALERT_OUTBOX_FILE, topic_arn=alerts_arn, smtp_host=host,
                        smtp_port=self.s.ports.smtp)
        outbox.take_direct_messages()  # the case contact's SMS (SNS to a number) and SES email
        poller = SqsPoller(url, lambda m: outbox.handle_envelope(json.loads(m["Body"])),
                           name="alerts→alert outbox").start()
        self._on_stop("alerts poller", poller.stop)

    def _http_api(self, template: tpl.Template, lambdas: Any, moto_url: str, bucket: str) -> None:
        assert self.delivery is not None
        api = HttpApi(template.routes, lambdas, static_dir=REPO / "mobile_upload",
                      moto_url=moto_url, upload_bucket=bucket, confirm=self.delivery.confirm,
                      unsubscribe=self.delivery.unsubscribe)
        api.serve(self.s.host, self.s.ports.http_api)
        self._on_stop("HTTP API", api.stop)

    def _indexer(self, template: tpl.Template, lambdas: Any, queue_url: str) -> None:
        ids = [f.logical_id for f in template.functions.values()
               if f.code_dir.name == "gallery_indexer"]
        if not ids:
            raise ConfigError(f"{template.path}: no function with code in "
                              "cloud/lambdas/gallery_indexer")
        # One poller = reserved concurrency 1: versions are built one after another.
        poller = SqsPoller(queue_url, lambda ev: lambdas.invoke(ids[0], ev), name="indexer",
                           as_lambda_event=True).start()
        self._on_stop("indexer poller", poller.stop)

    def _rules(self, template: tpl.Template, mqtt_url: str) -> None:
        """Broker → durable inbox here; the ``rules`` child handles what is in it."""
        rules = compile_rules(template.rules)
        inbox = Inbox(self.var / INBOX_FILE)
        self._on_stop("rules inbox", inbox.close)
        sub = intake(inbox, mqtt_url, sorted({r.query.topic_filter for r in rules}))
        self._on_stop("rules intake", sub.stop)
        for r in rules:
            log.info("rule %s: %s → %s", r.rule.name, r.rule.sql, r.rule.function_id)

    def _workers(self) -> None:
        """The rules router and SNS delivery, as restartable children (oneeye.local.workers)."""
        cfg = WorkerConfig(var_dir=self.var, template=self.s.template.resolve(),
                           region=self.s.region, desk_queue_url=self._desk_queue_url,
                           confirm_base_url=self.s.url("http_api"), sns=self.s.sns)
        path = self.var / "workers.json"
        path.write_text(cfg.model_dump_json(indent=2))
        for name in ("rules", "sns-delivery"):
            self._child(name, [sys.executable, "-m", "oneeye.local.workers", name, str(path)],
                        self.info.env)

    def _child(self, name: str, argv: list[str], env: dict[str, str],
               on_start: Callable[[Child], object] | None = None) -> Child:
        child = Child(name, argv, env, on_start=on_start).start()
        self.children[name] = child
        self._on_stop(name, child.stop)
        return child

    def _enrol(self, customers: list[Any], bucket: str) -> None:
        uploads = enrol_photos(customers)

        def work() -> None:
            s3 = aws.client("s3")
            for key, path in uploads:
                if self._stopping.is_set():
                    return
                try:
                    s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(),
                                  ContentType="image/jpeg")
                except Exception as exc:  # the stack keeps running without that photo
                    log.warning("enrolling %s failed: %s", key, exc)
            log.info("uploaded %d demo customer photos; the indexer builds the gallery",
                     len(uploads))

        threading.Thread(target=work, daemon=True, name="enrol").start()

    def _dashboard(self, cloud_env: dict[str, str]) -> None:
        desk_arn = cloud_env["DESK_TOPIC_ARN"]
        signer = Signer(self.var / SNS_DIR, self.s.region)
        cfg = self.var / "dashboard.json"
        cfg.write_text(json.dumps({
            "var_dir": str(self.var / "dashboard"), "allowed_topics": [desk_arn],
            "pinned_certs": {signer.cert_url: str(signer.cert_file)},
            "confirm_hosts": [f"{self.s.url_host}:{self.s.ports.http_api}",
                              f"127.0.0.1:{self.s.ports.http_api}"],
            # plain http on localhost: a Secure cookie would never come back
            "session_cookie_secure": False,
            # The local SNS delivery retries a down dashboard for up to give_up_after_s;
            # what it finally delivers must not be refused as stale (replays stay refused
            # as duplicates: event ids are kept for event_ids_retention_days).
            "sns_max_age_s": min(7 * 86400.0, max(3600.0, self.s.sns.give_up_after_s)),
            "alert_outbox_path": str(self.var / ALERT_OUTBOX_FILE),
            # the management screens (customers' photos, cases) use the same resources
            "cloud": {"bucket": cloud_env["ONEEYE_BUCKET"],
                      "cases_table": cloud_env["CASES_TABLE"],
                      "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"],
                      # a customer id added on the Customers page must be a customer
                      "customer_api_url": self.info.env["CUSTOMER_API_URL"],
                      "customer_api_key_file": str(self.var / "customer_api_key"),
                      "agencies_table": cloud_env["AGENCIES_TABLE"]}},
            indent=2))
        password = (self.s.demo_password.get_secret_value() if self.s.demo_password
                    else secrets.token_urlsafe(9))
        oneeye = [sys.executable, "-m", "oneeye.cli"]
        run_once([*oneeye, "dashboard", "add-user", DEMO_USER, "--site", self.s.site_id,
                  "--role", "branch_admin", "--reset-existing", "--password-stdin",
                  "--config", str(cfg)],
                 self.info.env, stdin=password + "\n")
        self.info.demo_password = password
        self.info.urls["dashboard"] = self.s.url("dashboard", "/")
        host = "127.0.0.1" if self.s.host in ("0.0.0.0", "") else self.s.host
        base = f"http://{host}:{self.s.ports.dashboard}"

        def when_up(child: Child) -> None:
            """After every (re)start: deliver the backlog as soon as it answers."""
            proc = child.proc

            def wait() -> None:
                if wait_http(f"{base}/healthz", 300,
                             alive=lambda: proc is not None and proc.poll() is None):
                    log.info("dashboard is up on %s", base)
                    self.delivery.retry_now(f"{base}/sns")

            threading.Thread(target=wait, daemon=True, name="dashboard-up").start()

        self._child("dashboard", [*oneeye, "dashboard", "run", "--host", self.s.host,
                                  "--port", str(self.s.ports.dashboard), "--config", str(cfg)],
                    self.info.env, on_start=when_up)

    def _edge(self, mqtt_url: str, bucket: str) -> None:
        edge_dir = self.var / "edge"
        drop_stale_gallery_cache(edge_dir / "galleries", bucket)
        env = {**self.info.env,
               "ONEEYE_EDGE__GALLERY_SYNC__ENABLED": "true",
               "ONEEYE_EDGE__GALLERY_SYNC__BUCKET": bucket,
               "ONEEYE_EDGE__GALLERY_SYNC__CACHE_DIR": str(edge_dir / "galleries"),
               "ONEEYE_EDGE__OUTBOX__PATH": str(edge_dir / "outbox.sqlite3"),
               "ONEEYE_EDGE__SITE_ID": self.s.site_id,
               "ONEEYE_EDGE__DEVICE_ID": self.s.edge_device_id,
               "ONEEYE_EDGE__GALLERY_SYNC__PUBLIC_KEY": self.gallery_public_key}
        argv = [sys.executable, "-m", "oneeye.cli", "edge", "--source", str(self.s.edge_source),
                "--publish", mqtt_url, "--loop", "--realtime", *self.s.edge_args]
        self._child("edge", argv, env)

    # -- stop -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()
        while self._stops:
            name, fn = self._stops.pop()
            try:
                fn()
            except Exception:  # one part failing to stop must not leave the others running
                log.exception("stopping %s failed", name)
            else:
                log.debug("stopped %s", name)
