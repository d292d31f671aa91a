"""Amber alert commands: ``upload``, ``case list|close``, ``agency add|list|revoke``, ``subscribe``.

These commands parse and print. ``upload`` and ``case`` talk to the HTTP API through
:class:`oneeye.amber_client.AmberApi` with an agency token, exactly like the phone page
(so the token check, rate limit and audit apply); ``agency`` and ``subscribe`` are
operator commands that talk to DynamoDB / SNS directly through :func:`oneeye.aws.client`.
A running local stack is found by :func:`oneeye.amber_client.load_stack`
(``--stack-file`` or ``ONEEYE_STACK_FILE``). Photos are prepared by
:func:`prepare_photo` through the one decoder.

Exit status: 0 when every photo was accepted, 1 when any was rejected or
failed (a script uploading many photos must notice), 2 for usage errors.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from oneeye import aws
from oneeye.amber_client import AmberApi, agency_token, api_url, load_stack, need_env
from oneeye.cloud.agencies import Agencies
from oneeye.cloud.uploads import CONVERTED_MAX_SIDE, MAX_PHOTO_BYTES
from oneeye.commands import ui
from oneeye.errors import ImageError, OneEyeError, PhotoRejected
from oneeye.images import upload_copy

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def register(cli: click.Group) -> None:
    cli.add_command(upload)
    cli.add_command(case_group)
    cli.add_command(agency_group)
    cli.add_command(subscribe)


stack_option = click.option("--stack-file", type=click.Path(dir_okay=False, path_type=Path),
                            default=None, help="Local stack info (default var/local/stack.json).")
api_option = click.option("--api", default=None, help="HTTP API base URL (default: the local "
                          "stack's, else $ONEEYE_API_URL, else http://127.0.0.1:8080).")
token_option = click.option("--token", envvar="ONEEYE_AGENCY_TOKEN", default=None,
                            help="Agency token (or $ONEEYE_AGENCY_TOKEN).")


# --- upload -----------------------------------------------------------------------------------

def _client(api: str | None, token: str | None, stack_file: Path | None) -> AmberApi:
    info = load_stack(stack_file)
    return AmberApi(api_url(api, info), agency_token(token, info),
                    on_rate_limited=lambda s: click.echo(f"\nrate limited; waiting {s} s",
                                                         err=True))


#: The decoder's reason → the upload's reason code (as the phone page's).
_REJECTED = {"empty": "not_an_image", "not_an_image": "not_an_image",
             "unsupported_format": "not_an_image", "unsupported_mode": "not_an_image",
             "too_large": "too_large"}


def prepare_photo(path: Path, *, original: bool = False) -> tuple[bytes, str]:
    """(bytes, content type) to upload (see :func:`oneeye.images.upload_copy`), or
    :class:`PhotoRejected` with the decoder's reason."""

    try:
        return upload_copy(path, max_side=CONVERTED_MAX_SIDE, max_bytes=MAX_PHOTO_BYTES,
                           original=original)
    except ImageError as exc:  # the line printed names the file already
        raise PhotoRejected(_REJECTED.get(exc.reason, "unreadable"),
                            str(exc).removeprefix(f"{path}: ")) from exc


@click.command("upload")
@click.argument("photos", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--case-id", default=None, help="Existing case id; omit to open a new case.")
@click.option("--name", required=True, help="The missing person's name.")
@click.option("--age", type=click.IntRange(0, 130), default=None)
@click.option("--description", default=None)
@click.option("--contact", default=None, help="Whom sightings are messaged to: a phone in "
              "international form (+44 20 7946 0958) and/or an email, comma-separated (required "
              "for a new case; the server normalises it to E.164).")
@click.option("--reported-by", default=None, help="Reporting officer / unit.")
@click.option("--original", is_flag=True, help="Send photos unchanged (no resize to 1600 px).")
@click.option("--wait", "wait_s", type=click.FloatRange(0), default=180, show_default=True,
              help="Seconds to wait for each photo's verdict (0: don't wait).")
@click.option("--json", "as_json", is_flag=True, help="One JSON result per photo on stdout.")
@api_option
@token_option
@stack_option
def upload(photos: tuple[Path, ...], case_id: str | None, name: str, age: int | None,
           description: str | None, contact: str | None, reported_by: str | None,
           original: bool, wait_s: float, as_json: bool, api: str | None, token: str | None,
           stack_file: Path | None) -> None:
    """Upload PHOTOS of a missing person; print each photo's verdict."""
    client = _client(api, token, stack_file)
    results: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for path in ui.track("uploading", photos, lambda p: p.name):
        try:
            data, ctype = prepare_photo(path, original=original)
        except PhotoRejected as exc:
            results.append({"photo": str(path), "state": "rejected", "reason": exc.reason,
                            "message": str(exc)})
            continue
        grant = client.create_upload({
            "case_id": case_id, "name": name, "age": age, "description": description,
            "contact": contact, "agency": reported_by, "content_type": ctype,
            "filename": path.name[:200], "size": len(data)})
        case_id = grant["case_id"]  # the next photos join the case the first one opened
        try:
            client.post_photo(grant, data, path.name)
        except OneEyeError as exc:
            results.append({"photo": str(path), "state": "failed", "message": str(exc),
                            "upload_id": grant["upload_id"]})
            continue
        entry = {"photo": str(path), "upload_id": grant["upload_id"],
                 "case_id": grant["case_id"], "state": "pending",
                 "status_url": grant["status_url"]}
        pending.append(entry)
        results.append(entry)
    if pending and wait_s > 0:
        deadline = time.monotonic() + wait_s
        with ui.progress("checking", len(pending)) as advance:
            waiting = list(pending)
            while waiting and time.monotonic() < deadline:
                for entry in list(waiting):
                    st = client.status(entry["status_url"])
                    if st.get("state") != "pending":
                        entry.update({k: st.get(k) for k in ("state", "reason", "message",
                                                             "detail", "gallery_version")})
                        waiting.remove(entry)
                        advance(Path(entry["photo"]).name)
                if waiting:
                    time.sleep(0.5)
        for entry in waiting:
            entry["message"] = f"no verdict within {wait_s:.0f} s; check later with its id"
    for entry in results:
        entry.pop("status_url", None)
        if as_json:
            click.echo(json.dumps(entry))
        else:
            mark = {"accepted": "✓", "pending": "…"}.get(entry["state"], "✗")
            line = f"{mark} {Path(entry['photo']).name}: {entry.get('message') or entry['state']}"
            if entry.get("upload_id"):
                line += f"  [{entry['upload_id']}]"
            click.echo(line)
    if case_id and not as_json:
        click.echo(f"case {case_id}")
    sys.exit(1 if any(e["state"] != "accepted" for e in results) else 0)


# --- cases ------------------------------------------------------------------------------------

#: ``case list`` columns: header → field of ``GET /api/cases`` (times are UTC).
CASE_COLUMNS = ("CASE", "STATUS", "NAME", "AGE", "CREATED (UTC)", "UPDATED (UTC)")
CASE_FIELDS = ("case_id", "status", "name", "age", "created_at", "updated_at")


@click.group("case")
def case_group() -> None:
    """List or close your agency's missing-person cases."""


@case_group.command("list")
@click.option("--status", type=click.Choice(["open", "closed"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@api_option
@token_option
@stack_option
def case_list(status: str | None, as_json: bool, api: str | None, token: str | None,
              stack_file: Path | None) -> None:
    """Cases of the token's agency, newest first."""
    data = _client(api, token, stack_file).cases(status)
    cases = data.get("cases") or []
    if as_json:
        click.echo(json.dumps(data))
    elif not cases:
        click.echo(f"no cases for {data.get('agency')}")
    else:
        ui.table(CASE_COLUMNS, [[c.get(k) for k in CASE_FIELDS] for c in cases])


@case_group.command("close")
@click.argument("case_id")
@api_option
@token_option
@stack_option
def case_close(case_id: str, api: str | None, token: str | None,
               stack_file: Path | None) -> None:
    """Close CASE_ID: every device drops the person with the next gallery version."""
    data = _client(api, token, stack_file).close_case(case_id)
    note = " (was already closed; removal sent again)" if data.get("already_closed") else ""
    click.echo(f"case {case_id} closed{note}; removal from every gallery is queued")


# --- agencies ---------------------------------------------------------------------------------

@click.group("agency")
def agency_group() -> None:
    """Manage agency tokens for the upload API (operator; talks to DynamoDB)."""


def _agencies(stack_file: Path | None) -> Any:

    load_stack(stack_file)
    return Agencies(need_env("AGENCIES_TABLE"))


@agency_group.command("add")
@click.argument("name")
@click.option("--time-zone", default="UTC", show_default=True,
              help="The agency's IANA time zone (e.g. Europe/Paris): alert times are given "
                   "in it, with UTC beside them.")
@stack_option
def agency_add(name: str, time_zone: str, stack_file: Path | None) -> None:
    """Create a token for agency NAME. It is printed once and stored only as a hash."""
    token, agency = _agencies(stack_file).add(name, time_zone=time_zone)
    click.echo(f"agency {agency.name} ({agency.time_zone}): token id {agency.token_id}",
               err=True)
    click.echo("the token is shown only now — give it to the agency over a secure channel:",
               err=True)
    click.echo(token)


@agency_group.command("list")
@stack_option
def agency_list(stack_file: Path | None) -> None:
    """Agencies and their token ids (never the tokens)."""
    for a in _agencies(stack_file).list():
        click.echo(f"{a.token_id}  {'revoked' if a.revoked else 'active ':<7}  "
                   f"{a.created_at}  {a.name}")


@agency_group.command("revoke")
@click.argument("token_id")
@stack_option
def agency_revoke(token_id: str, stack_file: Path | None) -> None:
    """Revoke the token whose id (see `agency list`) starts with TOKEN_ID."""
    a = _agencies(stack_file).revoke(token_id)
    click.echo(f"revoked token {a.token_id} of {a.name}")


# --- SNS subscriptions ------------------------------------------------------------------------

@click.command("subscribe")
@click.option("--email", default=None, help="Email address for amber alerts.")
@click.option("--sms", default=None, help="Phone number in E.164 form, e.g. +447700900123.")
@click.option("--site", "sites", multiple=True,
              help="Only alerts from this site_id (repeat for several; default: all sites).")
@click.option("--list", "list_only", is_flag=True, help="List the alert subscriptions.")
@click.option("--remove", "remove_arn", default=None, help="Unsubscribe this subscription ARN.")
@stack_option
def subscribe(email: str | None, sms: str | None, sites: tuple[str, ...], list_only: bool,
              remove_arn: str | None, stack_file: Path | None) -> None:
    """Subscribe an email address or phone to amber alerts (SNS alerts topic)."""

    load_stack(stack_file)
    topic = need_env("ALERTS_TOPIC_ARN")
    sns = aws.client("sns")
    if list_only or remove_arn:
        if remove_arn:
            sns.unsubscribe(SubscriptionArn=remove_arn)
            click.echo(f"unsubscribed {remove_arn}")
        for sub in sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", []):
            policy = ""
            if sub["SubscriptionArn"].startswith("arn:"):
                attrs = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])
                policy = attrs.get("Attributes", {}).get("FilterPolicy", "")
            click.echo(f"{sub['Protocol']:<6} {sub['Endpoint']:<32} {policy or 'all sites'}  "
                       f"{sub['SubscriptionArn']}")
        return
    if bool(email) == bool(sms):
        raise click.UsageError("give exactly one of --email or --sms (or --list)")
    if email and not _EMAIL.match(email):
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="--email")
    if sms and not _E164.match(sms):
        raise click.BadParameter(f"{sms!r} is not an E.164 number like +447700900123",
                                 param_hint="--sms")
    attributes = {"FilterPolicy": json.dumps({"site_id": list(sites)})} if sites else {}
    resp = sns.subscribe(TopicArn=topic, Protocol="email" if email else "sms",
                         Endpoint=email or sms, Attributes=attributes,
                         ReturnSubscriptionArn=True)
    where = f"sites {', '.join(sites)}" if sites else "all sites"
    click.echo(f"subscribed {email or sms} to amber alerts from {where}: "
               f"{resp['SubscriptionArn']}")
    if email and not os.environ.get("AWS_ENDPOINT_URL"):
        click.echo("AWS sends a confirmation email first; alerts start once it is confirmed.",
                   err=True)
