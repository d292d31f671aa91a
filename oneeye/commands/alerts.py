"""``oneeye alerts``: the emails and SMS the local stack would have sent (its alert outbox).

``oneeye outbox`` is the same command under its old name, kept for one release: the
edge also has an outbox (its queue of unsent events), and one name must mean one thing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from oneeye.local.alert_outbox import ALERT_OUTBOX_FILE, read

DEFAULT_PATH = Path("var/local") / ALERT_OUTBOX_FILE


def register(cli: click.Group) -> None:
    cli.add_command(alerts)
    cli.add_command(outbox_alias)


def _options(fn: click.decorators.FC) -> click.decorators.FC:
    for option in reversed([
        click.option("--path", "path", type=click.Path(dir_okay=False, path_type=Path),
                     default=DEFAULT_PATH, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="One JSON object per line."),
        click.option("--follow", "-f", is_flag=True, help="Keep printing new entries."),
        click.option("--last", type=click.IntRange(1), default=None,
                     help="Only the last N entries."),
    ]):
        fn = option(fn)
    return fn


@click.command("alerts")
@_options
def alerts(path: Path, as_json: bool, follow: bool, last: int | None) -> None:
    """Show the local alert outbox (amber-alert emails and SMS)."""
    show_alerts(path, as_json=as_json, follow=follow, last=last)


@click.command("outbox", deprecated=True)
@_options
def outbox_alias(path: Path, as_json: bool, follow: bool, last: int | None) -> None:
    """Old name of `oneeye alerts` (kept for one release; use `oneeye alerts`)."""
    show_alerts(path, as_json=as_json, follow=follow, last=last)


def show_alerts(path: Path, *, as_json: bool, follow: bool, last: int | None) -> None:

    entries = read(path)
    if not entries and not follow:
        click.echo(f"alert outbox {path} is empty (alerts appear here when a missing person "
                   "is seen and someone subscribed with `oneeye subscribe`)", err=True)
        return
    shown = entries[-last:] if last else entries
    for e in shown:
        _show(e, as_json)
    seen = len(entries)
    while follow:
        time.sleep(1.0)  # polling a file a person is watching; a second is plenty
        entries = read(path)
        for e in entries[seen:]:
            _show(e, as_json)
        seen = len(entries)


def _show(entry: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(entry))
        return
    head = f"{entry.get('sent_at')}  {str(entry.get('kind', '?')).upper():5}  to {entry.get('to')}"
    click.echo(head)
    if entry.get("subject"):
        click.echo(f"  subject: {entry['subject']}")
    for line in str(entry.get("body", "")).splitlines():
        click.echo(f"  {line}")
    click.echo("")
