"""Amber alert end to end over the local stack (`oneeye up` in a subprocess).

A phone-style upload (HTTP API → presigned POST through the stack's /s3-upload
proxy → moto) → S3 notification → SQS → gallery_indexer → new ``missing``
gallery announced on MQTT → the running edge (looping a generated video in
which that person walks in, shown with a *different* photo) swaps galleries
and matches → IoT rule → amber_alert → an email and an SMS in the outbox
(subscribed with ``oneeye subscribe``, site filter included) and a
``missing_person_sighted`` banner on the desk topic's HTTP subscriber.
Closing the case then announces a gallery without the person.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneeye.synth import Visit, make_entrance_video
from tests.amber_support import AmberStack, MatchWatcher
from tests.wait import wait_until

PERSON = "Bill_Gates"


def amber_video(out: Path, lfw: Path) -> Path:
    stranger = next(iter(sorted((lfw / "impostors").iterdir())))
    probe = sorted((lfw / "probes" / PERSON).iterdir())[0]
    make_entrance_video(out, [Visit("stranger", stranger, False, 2.0),
                              Visit(PERSON, probe, True, 3.0)], seed=7)
    return out


@pytest.fixture
def stack(tmp_path: Path, data_dir: Path, lfw: Path) -> Iterator[AmberStack]:
    video = amber_video(tmp_path / "entrance.mp4", lfw)
    s = AmberStack(tmp_path / "var", video, data_dir)
    try:
        s.wait_ready()
        yield s
    finally:
        s.close()


@pytest.mark.slow
def test_phone_upload_reaches_the_edge_and_a_sighting_alerts(stack: AmberStack,
                                                             lfw: Path) -> None:
    token = stack.cli("agency", "add", "Thames Valley Police").strip()
    stack.cli("subscribe", "--email", "duty@police.example", "--site", "site-1")
    stack.cli("subscribe", "--sms", "+447700900123")
    stack.cli("subscribe", "--email", "elsewhere@police.example", "--site", "site-99")
    watch = MatchWatcher(stack.mqtt)
    try:
        photo = sorted((lfw / "gallery" / PERSON).iterdir())[0]
        grant = stack.upload(token, photo, name="William G.", age=68,
                             description="grey jumper", contact="+44 20 7946 0958")
        case_id = grant["case_id"]
        status = wait_until(lambda: (s := stack.status(token, grant["upload_id"]))
                            ["state"] != "pending" and s, 120, "the indexer's verdict",
                            context=stack.tail)
        assert status["state"] == "accepted", status
        version = status["gallery_version"]
        assert status["message"] == (f"accepted — cameras now looking for William G. "
                                     f"(gallery v{version})")

        match = wait_until(lambda: next((m for _, m in watch.matches
                                         if m["person_id"] == case_id), None),
                           180, f"the edge matching {case_id}", context=stack.tail)
        assert match["watchlist"] == "missing" and match["gallery_version"] >= version

        def alerts() -> list[dict[str, Any]]:
            return [e for e in stack.outbox() if case_id in (e.get("body") or "")]

        def to(addr: str) -> dict[str, Any] | None:
            return next((e for e in alerts() if e["to"] == addr), None)

        # (the stack subscribes its own demo duty officer as well)
        wait_until(lambda: to("duty@police.example") and to("+447700900123"), 60,
                   "email + SMS to the subscribers", context=stack.tail)
        email, sms = to("duty@police.example"), to("+447700900123")
        assert email is not None and sms is not None
        assert email["kind"] == "email" and sms["kind"] == "sms"
        assert "William G." in email["body"] and "site-1" in email["body"]
        assert len(sms["body"]) <= 140 and case_id in sms["body"]
        assert all(e["to"] != "elsewhere@police.example" for e in stack.outbox())

        banner = wait_until(lambda: next((ev for _, ev in stack.sink.desk_events()
                                          if ev.get("kind") == "missing_person_sighted"
                                          and (ev.get("case") or {}).get("id") == case_id),
                                         None), 60, "the desk banner", context=stack.tail)
        assert banner["case"]["name"] == "William G." and banner["site_id"] == "site-1"
        assert banner["case"]["agency"] == "Thames Valley Police"

        # Closing the case removes the person from every device's gallery.
        assert f"case {case_id} closed" in stack.cli("case", "close", case_id, "--token", token)
        removal = wait_until(lambda: next((u for _, u in watch.gallery_updates
                                           if u.get("change") == "removed"
                                           and u.get("person_id") == case_id), None),
                             60, "the removal gallery update", context=stack.tail)
        assert removal["watchlist"] == "missing" and removal["version"] > version
        assert "closed" in stack.cli("case", "list", "--token", token)
        # Without --token the commands use the stack's own demo token (a 0600 file).
        token_file = Path(json.loads(stack.stack_file.read_text())["agency_token_file"])
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert "no cases for Demo Agency" in stack.cli("case", "list")
    finally:
        watch.close()
