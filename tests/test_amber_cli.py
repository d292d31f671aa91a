"""`oneeye agency|upload|case|subscribe` against a moto server and the HTTP API stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from oneeye import aws
from oneeye.cli import cli
from oneeye.cloud.agencies import token_sha256
from tests.amber_support import AmberHarness, IndexerPump
from tests.net_support import free_port


@pytest.fixture
def stack_file(cloud_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    api = AmberHarness()
    pump = IndexerPump(cloud_env["INDEXER_QUEUE_URL"])
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"urls": {"mobile upload page": api.url + "/"},
                                "env": cloud_env}))
    yield path
    pump.close()
    api.close()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def add_agency(stack_file: Path, name: str = "Kent Police") -> str:
    code, out, err = run("agency", "add", name, "--stack-file", str(stack_file))
    assert code == 0, err
    return out.strip()


def test_agency_add_prints_the_token_once_and_stores_its_hash(stack_file: Path,
                                                              cloud_env: dict[str, str]) -> None:
    token = add_agency(stack_file)
    assert token.startswith("oeat_") and "\n" not in token
    items = aws.client("dynamodb").scan(TableName=cloud_env["AGENCIES_TABLE"])["Items"]
    assert token not in json.dumps(items)
    assert items[0]["token_sha256"]["S"] == token_sha256(token)
    code, out, _ = run("agency", "list", "--stack-file", str(stack_file))
    assert code == 0 and token_sha256(token)[:12] in out and token not in out
    code, out, _ = run("agency", "revoke", token_sha256(token)[:10], "--stack-file",
                       str(stack_file))
    assert code == 0 and "revoked" in out
    code, _, err = run("agency", "add", "Polizei München", "--stack-file", str(stack_file))
    assert code == 2 and "invalid agency name" in err


def test_upload_many_photos_reports_each_verdict(stack_file: Path, examples: Path,
                                                 tmp_path: Path) -> None:
    token = add_agency(stack_file)
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    code, out, err = run(
        "upload", "--name", "Barack O.", "--age", "61", "--contact", "+44 20 7946 0958",
        "--stack-file", str(stack_file),
        str(examples / "obama-1080p.jpg"), str(examples / "two_people.jpg"), str(junk),
        env={"ONEEYE_AGENCY_TOKEN": token})
    assert code == 1, err  # one photo was rejected
    lines = out.strip().splitlines()
    assert lines[0].startswith("✓ obama-1080p.jpg: accepted — cameras now looking for Barack O.")
    assert lines[1].startswith("✗ two_people.jpg: two faces — crop to one person")
    assert lines[2].startswith("✗ notes.jpg: not an image")
    case_id = lines[-1].removeprefix("case ")
    assert case_id.startswith("MP-")
    assert "uploading" not in err  # not a TTY: no progress bar

    code, out, _ = run("case", "list", "--stack-file", str(stack_file), "--token", token)
    header, _rule, row, *_ = out.splitlines()
    assert header.split() == ["CASE", "STATUS", "NAME", "AGE", "CREATED", "(UTC)", "UPDATED",
                              "(UTC)"]
    assert code == 0 and row.split()[:5] == [case_id, "open", "Barack", "O.", "61"]
    code, out, _ = run("case", "close", case_id, "--stack-file", str(stack_file),
                       "--token", token)
    assert code == 0 and f"case {case_id} closed" in out
    code, out, _ = run("case", "list", "--status", "closed", "--json", "--stack-file",
                       str(stack_file), "--token", token)
    assert [c["case_id"] for c in json.loads(out)["cases"]] == [case_id]


def test_case_commands_find_the_local_stacks_token_by_themselves(
        stack_file: Path, examples: Path, tmp_path: Path) -> None:
    """`oneeye up` keeps its demo token in a 0600 file that stack.json names."""
    token_file = tmp_path / "agency_token"
    token_file.write_text(add_agency(stack_file) + "\n")
    info = json.loads(stack_file.read_text())
    stack_file.write_text(json.dumps({**info, "agency_token_file": str(token_file)}))
    env = {"ONEEYE_AGENCY_TOKEN": ""}
    code, out, err = run("upload", "--name", "Found Token", "--contact", "+44 20 7946 0958",
                         "--stack-file", str(stack_file),
                         str(examples / "obama.jpg"), env=env)
    assert code == 0, err
    code, out, err = run("case", "list", "--stack-file", str(stack_file), env=env)
    assert code == 0 and "Found Token" in out, err


def test_upload_converts_any_decodable_photo_and_names_heic(stack_file: Path, examples: Path,
                                                            tmp_path: Path) -> None:
    from PIL import Image

    webp = tmp_path / "portrait.webp"
    Image.open(examples / "obama.jpg").save(webp, format="WEBP")
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    code, out, err = run("upload", "--name", "Web P.", "--contact", "+44 20 7946 0958",
                         "--stack-file", str(stack_file),
                         "--token", add_agency(stack_file), str(webp), str(heic))
    assert code == 1, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("✓ portrait.webp: accepted")
    assert lines[1].startswith("✗ IMG_0001.HEIC: HEIC is not supported; export as JPEG")


def test_upload_without_or_with_a_wrong_token_fails_clearly(stack_file: Path,
                                                            examples: Path) -> None:
    code, _, err = run("upload", "--name", "X", "--stack-file", str(stack_file),
                       str(examples / "obama.jpg"), env={"ONEEYE_AGENCY_TOKEN": ""})
    assert code == 2 and "agency token is needed" in err
    code, _, err = run("upload", "--name", "X", "--stack-file", str(stack_file),
                       "--token", "oeat_" + "y" * 43, str(examples / "obama.jpg"))
    assert code == 2 and "401" in err and "not recognised" in err


def test_subscribe_email_and_sms_with_a_site_filter(stack_file: Path,
                                                    cloud_env: dict[str, str]) -> None:
    code, out, err = run("subscribe", "--email", "duty@example.org", "--site", "branch-7",
                         "--stack-file", str(stack_file))
    assert code == 0, err
    code, out, err = run("subscribe", "--sms", "+447700900123", "--stack-file", str(stack_file))
    assert code == 0, err
    sns = aws.client("sns")
    subs = sns.list_subscriptions_by_topic(TopicArn=cloud_env["ALERTS_TOPIC_ARN"])[
        "Subscriptions"]
    by_proto = {s["Protocol"]: s for s in subs}
    assert by_proto["email"]["Endpoint"] == "duty@example.org"
    assert by_proto["sms"]["Endpoint"] == "+447700900123"
    attrs = sns.get_subscription_attributes(SubscriptionArn=by_proto["email"]["SubscriptionArn"])
    assert json.loads(attrs["Attributes"]["FilterPolicy"]) == {"site_id": ["branch-7"]}
    code, out, _ = run("subscribe", "--list", "--stack-file", str(stack_file))
    assert code == 0 and "duty@example.org" in out and "branch-7" in out
    for bad in (["--sms", "07700900123"], ["--email", "not-an-address"], [],
                ["--email", "a@b.org", "--sms", "+447700900123"]):
        code, _, err = run("subscribe", *bad, "--stack-file", str(stack_file))
        assert code == 2, (bad, err)


@pytest.mark.parametrize("command", [["agency", "list"], ["agency", "add", "Kent Police"],
                                     ["subscribe", "--email", "it@branch.example"]])
def test_a_stopped_stack_is_a_sentence_not_a_traceback(
        cloud_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        command: list[str]) -> None:
    """A newcomer's try: the stack had stopped and every AWS-backed command printed a
    botocore traceback (exit 1). Now it says what it could not reach and what to check."""
    dead = f"http://127.0.0.1:{free_port()}"
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({"urls": {}, "env": {**cloud_env, "AWS_ENDPOINT_URL": dead}}))
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    aws.clear_cache()
    code, _, err = run(*command, "--stack-file", str(stack))
    aws.clear_cache()
    assert code == 2 and "Traceback" not in err
    assert f"cannot reach {dead}" in err and "./deploy.sh local" in err
