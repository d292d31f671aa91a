"""Amber alert commands: ``upload``, ``case list|close``, ``agency add|list|revoke``, ``subscribe``.

``upload`` and ``case`` talk to the HTTP API with an agency token, exactly like
the phone page (so the token check, rate limit and audit apply); ``agency`` and
``subscribe`` are operator commands that talk to DynamoDB / SNS directly
through :func:`oneeye.aws.client`.

Where things are: a running local stack writes ``var/local/stack.json``
(``urls`` and the Lambdas' ``env``); these commands read it (``--stack-file``
or ``ONEEYE_STACK_FILE``) and fill in whatever the environment does not set
already — AWS_ENDPOINT_URL, table names, topic ARNs and the API URL. Against
AWS, set those variables (or ``--api``) yourself.

Exit status: 0 when every photo was accepted, 1 when any was rejected or
failed (a script uploading many photos must notice), 2 for usage errors.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from oneeye.commands import ui
from oneeye.errors import OneEyeError

DEFAULT_STACK_FILE = Path("var/local/stack.json")
DEFAULT_API = "http://127.0.0.1:8080"
MAX_SIDE = 1600
MAX_BYTES = 10 * 1024 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def register(cli: click.Group) -> None:
    cli.add_command(upload)
    cli.add_command(case_group)
    cli.add_command(agency_group)
    cli.add_command(subscribe)


# --- where the stack is -----------------------------------------------------------------------

def load_stack(stack_file: Path | None) -> dict[str, Any]:
    """Read stack.json and export its env for names the environment does not set."""
    path = stack_file or Path(os.environ.get("ONEEYE_STACK_FILE") or DEFAULT_STACK_FILE)
    if not path.is_file():
        if stack_file is not None:
            raise OneEyeError(f"{path}: no such stack file (is `oneeye up` running?)")
        return {}
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OneEyeError(f"{path}: unreadable stack file ({exc})") from exc
    env = info.get("env") if isinstance(info, dict) else None
    if isinstance(env, dict):
        for key, value in env.items():
            os.environ.setdefault(str(key), str(value))
        if "AWS_ENDPOINT_URL" in env:
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # moto takes any; no profile
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        from oneeye import aws

        aws.clear_cache()
    return info if isinstance(info, dict) else {}


def agency_token(token: str | None, info: dict[str, Any]) -> str | None:
    """``--token`` / ``$ONEEYE_AGENCY_TOKEN``, else the running local stack's demo token.

    ``oneeye up`` keeps that token in a 0600 file named by ``agency_token_file`` in
    stack.json (never in stack.json itself).
    """
    if token:
        return token
    path = info.get("agency_token_file")
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def api_url(api: str | None, info: dict[str, Any]) -> str:
    if api:
        return api.rstrip("/")
    urls = info.get("urls") or {}
    for key in ("api", "http_api", "mobile upload page"):
        if urls.get(key):
            return str(urls[key]).rstrip("/")
    return (os.environ.get("ONEEYE_API_URL") or DEFAULT_API).rstrip("/")


def need_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise OneEyeError(f"{name} is not set: start the local stack (`oneeye up`), pass "
                          "--stack-file, or export it for your AWS stack")
    return value


class ApiClient:
    def __init__(self, base: str, token: str | None) -> None:
        import requests

        if not token:
            raise OneEyeError("an agency token is needed: --token, ONEEYE_AGENCY_TOKEN or a "
                              "running local stack (`oneeye up`); an operator makes one with "
                              "`oneeye agency add NAME`")
        self.base = base
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             *, retry_rate_limit: bool = True) -> dict[str, Any]:
        import requests

        for _ in range(5):
            try:
                resp = self.http.request(method, self.base + path, json=body, timeout=30)
            except requests.RequestException as exc:
                raise OneEyeError(f"cannot reach the OneEye API at {self.base}: {exc}") from exc
            if resp.status_code == 429 and retry_rate_limit:
                wait = min(65, int(resp.headers.get("Retry-After") or 10))
                click.echo(f"\nrate limited; waiting {wait} s", err=True)
                time.sleep(wait)
                continue
            break
        try:
            data = resp.json()
        except ValueError:
            data = {"message": resp.text[:200]}
        if resp.status_code >= 400:
            raise OneEyeError(f"{method} {path}: {resp.status_code} "
                              f"{data.get('message') or data.get('error') or ''}".strip())
        return data if isinstance(data, dict) else {"data": data}


stack_option = click.option("--stack-file", type=click.Path(dir_okay=False, path_type=Path),
                            default=None, help="Local stack info (default var/local/stack.json).")
api_option = click.option("--api", default=None, help="HTTP API base URL (default: the local "
                          "stack's, else $ONEEYE_API_URL, else http://127.0.0.1:8080).")
token_option = click.option("--token", envvar="ONEEYE_AGENCY_TOKEN", default=None,
                            help="Agency token (or $ONEEYE_AGENCY_TOKEN).")


# --- upload -----------------------------------------------------------------------------------

class PhotoRejected(OneEyeError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: The decoder's reason → (the upload's reason code, the words a person reads first).
_REJECTED = {"empty": ("not_an_image", "not an image"),
             "not_an_image": ("not_an_image", "not an image"),
             "unsupported_format": ("not_an_image", "not supported"),
             "unsupported_mode": ("not_an_image", "not supported"),
             "too_large": ("too_large", "file too large")}


def prepare_photo(path: Path, *, original: bool = False) -> tuple[bytes, str]:
    """(bytes, content type) to upload: JPEG/PNG as is, anything else re-encoded as JPEG.

    Photos over :data:`MAX_SIDE` px or :data:`MAX_BYTES` (unless ``original``) and every
    other format the one decoder reads (WebP, GIF, TIFF, 16-bit, CMYK …) are decoded by
    :func:`oneeye.images.load_image` (EXIF orientation applied) and sent as a JPEG of at
    most 1600 px. Raises :class:`PhotoRejected` with the decoder's reason otherwise.
    """
    from PIL import Image

    from oneeye.errors import ImageError
    from oneeye.images import load_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PhotoRejected("unreadable", f"cannot read {path}: {exc.strerror}") from exc
    kind = ("image/jpeg" if data[:3] == b"\xff\xd8\xff"
            else "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else None)
    try:
        rgb = load_image(data, max_bytes=max(len(data), 1))
    except ImageError as exc:
        reason, head = _REJECTED.get(exc.reason, ("unreadable", "unreadable"))
        raise PhotoRejected(reason, f"{head} — {str(exc).removeprefix('image: ')}") from exc
    if kind and (original or max(rgb.shape[:2]) <= MAX_SIDE) and len(data) <= MAX_BYTES:
        return data, kind
    if original and kind:
        raise PhotoRejected("too_large", f"file too large — {len(data) >> 20} MB; "
                                         f"the limit is {MAX_BYTES >> 20} MB")
    im = Image.fromarray(rgb)
    im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), "image/jpeg"


def post_photo(grant: dict[str, Any], data: bytes, filename: str) -> None:
    import requests

    ctype = grant["fields"].get("Content-Type", "image/jpeg")
    try:
        resp = requests.post(grant["url"], data=grant["fields"],
                             files={"file": (filename, data, ctype)}, timeout=120)
    except requests.RequestException as exc:
        raise OneEyeError(f"upload to storage failed: {exc}") from exc
    if resp.status_code >= 300:
        raise OneEyeError(f"storage refused the upload: HTTP {resp.status_code} "
                          f"{resp.text[:200]}")


@click.command("upload")
@click.argument("photos", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--case-id", default=None, help="Existing case id; omit to open a new case.")
@click.option("--name", required=True, help="The missing person's name.")
@click.option("--age", type=click.IntRange(0, 130), default=None)
@click.option("--description", default=None)
@click.option("--contact", default=None, help="Contact for sightings.")
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
    info = load_stack(stack_file)
    client = ApiClient(api_url(api, info), agency_token(token, info))
    results: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for path in ui.track("uploading", photos, lambda p: p.name):
        try:
            data, ctype = prepare_photo(path, original=original)
        except PhotoRejected as exc:
            results.append({"photo": str(path), "state": "rejected", "reason": exc.reason,
                            "message": str(exc)})
            continue
        grant = client.call("POST", "/api/uploads", {
            "case_id": case_id, "name": name, "age": age, "description": description,
            "contact": contact, "agency": reported_by, "content_type": ctype,
            "filename": path.name[:200], "size": len(data)})
        case_id = grant["case_id"]  # the next photos join the case the first one opened
        try:
            post_photo(grant, data, path.name)
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
                    st = client.call("GET", entry["status_url"])
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
    info = load_stack(stack_file)
    client = ApiClient(api_url(api, info), agency_token(token, info))
    data = client.call("GET", "/api/cases" + (f"?status={status}" if status else ""))
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
    info = load_stack(stack_file)
    client = ApiClient(api_url(api, info), agency_token(token, info))
    data = client.call("POST", f"/api/cases/{case_id}/close")
    note = " (was already closed; removal sent again)" if data.get("already_closed") else ""
    click.echo(f"case {case_id} closed{note}; removal from every gallery is queued")


# --- agencies ---------------------------------------------------------------------------------

@click.group("agency")
def agency_group() -> None:
    """Manage agency tokens for the upload API (operator; talks to DynamoDB)."""


def _agencies(stack_file: Path | None) -> Any:
    from oneeye.cloud.agencies import Agencies

    load_stack(stack_file)
    return Agencies(need_env("AGENCIES_TABLE"))


@agency_group.command("add")
@click.argument("name")
@stack_option
def agency_add(name: str, stack_file: Path | None) -> None:
    """Create a token for agency NAME. It is printed once and stored only as a hash."""
    token, agency = _agencies(stack_file).add(name)
    click.echo(f"agency {agency.name}: token id {agency.token_id}", err=True)
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
    from oneeye import aws

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
