"""``oneeye up``: the whole system on one machine, until Ctrl-C or ``--duration``.

What it stands in for, and why: docs/architecture.md §5.

Settings: ``--config`` (YAML/JSON of :class:`oneeye.local.settings.LocalSettings`),
then ``ONEEYE_LOCAL__…`` environment variables, then flags.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from oneeye.config import load_settings
from oneeye.local.settings import LocalSettings
from oneeye.local.stack import LocalStack


def register(cli: click.Group) -> None:
    cli.add_command(up)


F = TypeVar("F", bound=Callable[..., Any])


def _port(flag: str, name: str) -> Callable[[F], F]:
    return click.option(f"--{flag}-port", f"{flag.replace('-', '_')}_port", default=None,
                        type=click.IntRange(1, 65535), help=f"ports.{name}")


@click.command("up")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Local stack settings file (YAML or JSON).")
@click.option("--mqtt-url", default=None,
              help="Use this broker (e.g. mqtt://127.0.0.1:1883) instead of the embedded one.")
@click.option("--edge-source", default=None,
              help="Run the edge on this video file/camera (looping, real time).")
@click.option("--duration", "duration_s", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop by itself after this many seconds.")
@click.option("--var-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="State directory (default var/local).")
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--public-host", default=None, help="Host name to print in URLs (LAN address "
              "for a phone).")
@click.option("--no-dashboard", is_flag=True, help="Do not run the dashboard.")
@click.option("--sns-endpoint", "sns_endpoints", multiple=True,
              help="Extra HTTP subscriber of the desk topic (repeatable).")
@_port("mqtt", "mqtt")
@_port("moto", "moto")
@_port("http", "http_api")
@_port("dashboard", "dashboard")
@_port("customer-api", "customer_api")
@_port("smtp", "smtp")
def up(config: Path | None, mqtt_url: str | None, edge_source: str | None,
       duration_s: float | None, var_dir: Path | None, host: str | None,
       public_host: str | None, no_dashboard: bool, sns_endpoints: tuple[str, ...],
       mqtt_port: int | None, moto_port: int | None, http_port: int | None,
       dashboard_port: int | None, customer_api_port: int | None,
       smtp_port: int | None) -> None:
    """Start the local stack: broker, moto, rules, HTTP API, SNS delivery, outbox, demo data."""

    # aiosmtpd logs every SMTP session at INFO on "mail.log"; the outbox logs what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    ports = {"mqtt": mqtt_port, "moto": moto_port, "http_api": http_port,
             "dashboard": dashboard_port, "customer_api": customer_api_port, "smtp": smtp_port}
    overrides: dict[str, Any] = {
        "mqtt_url": mqtt_url, "edge_source": edge_source, "host": host,
        "public_host": public_host, "var_dir": str(var_dir) if var_dir else None,
        "dashboard": False if no_dashboard else None,
        "sns_endpoints": list(sns_endpoints) or None,
        "ports": {k: v for k, v in ports.items() if v is not None} or None,
    }
    settings = load_settings(LocalSettings, path=config, env_prefix="ONEEYE_LOCAL",
                             overrides=overrides, root="local")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        click.echo(f"\nstopping the local stack ({signal.Signals(signum).name})…", err=True)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(settings)
    started = time.time()
    summary: dict[str, int] = {}
    try:
        info = stack.start()
        _banner(info)
        deadline = time.monotonic() + duration_s if duration_s else None
        # A child that dies is restarted by its supervisor (oneeye.local.children):
        # one crash is never a reason to stop the others.
        while not stop.wait(0.5):
            if deadline is not None and time.monotonic() >= deadline:
                click.echo(f"--duration {duration_s:g} s reached; stopping", err=True)
                break
    finally:
        if stack.delivery is not None:
            summary = stack.delivery.delivered_kinds(started)
        stack.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    # One parseable line: the newcomer test and people both read it.
    kinds = " ".join(f"{k}={v}" for k, v in sorted(summary.items())) or "none"
    click.echo(f"desk events delivered this run: {kinds}", err=True)
    click.echo("local stack stopped", err=True)


LABELS = {"dashboard": "dashboard", "http_api": "phone upload page", "customer_api":
          "customer API", "mqtt": "MQTT broker", "moto": "AWS APIs (moto)",
          "alert_outbox": "alert outbox"}


def _banner(info: Any) -> None:
    lines = ["", "OneEye local stack is up:"]
    width = max(len(v) for v in LABELS.values())
    lines += [f"  {LABELS.get(name, name):<{width}}  {url}" for name, url in info.urls.items()]
    if info.demo_password:
        lines.append(f"  {'dashboard login':<{width}}  {info.demo_user} / {info.demo_password}"
                     "   (generated now; demo only)")
    if info.agency_token:
        lines.append(f"  {'agency token':<{width}}  {info.agency_token}   (for the phone page; "
                     "demo only)")
    lines.append("  CLI commands (oneeye alerts, subscribe, case …) find this stack through "
                 "var/local/stack.json.")
    lines.append("  Ctrl-C stops everything.")
    click.echo("\n".join(lines) + "\n", err=True)
