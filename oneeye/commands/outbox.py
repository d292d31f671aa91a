"""``oneeye outbox``: the emails and SMS the local stack would have sent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click


def register(cli: click.Group) -> None:
    cli.add_command(outbox)


@click.command("outbox")
@click.option("--path", "path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("var/local/outbox.jsonl"), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries.")
@click.option("--last", type=click.IntRange(1), default=None, help="Only the last N entries.")
def outbox(path: Path, as_json: bool, follow: bool, last: int | None) -> None:
    """Show the local outbox (alert emails and SMS)."""
    from oneeye.local.outbox import read

    entries = read(path)
    if not entries and not follow:
        click.echo(f"outbox {path} is empty (alerts appear here when a missing person is "
                   "seen and someone subscribed with `oneeye subscribe`)", err=True)
        return
    shown = entries[-last:] if last else entries
    for e in shown:
        _show(e, as_json)
    seen = len(entries)
    while follow:
        time.sleep(1.0)
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
