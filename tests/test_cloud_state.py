"""The state table's four namespaces, and the gallery removal command's one shape.

Idempotency, cooldowns, rate windows and counters share ``IDEMPOTENCY_TABLE``; each
owns the first field of the key, so no event id, however it is spelled, reaches
another concept's item (:mod:`oneeye.cloud.dal.state`).
"""

from __future__ import annotations

import json

import pytest

from oneeye import aws
from oneeye.cloud.dal.state import Cooldowns, Counters, Idempotency, RateWindows, state_key
from oneeye.cloud.functions import cases, gallery_indexer
from oneeye.cloud.indexer_commands import RemoveCommand
from oneeye.errors import EventError
from oneeye.ids import is_uuid7

pytestmark = pytest.mark.timeout(60)


def _keys(table: str) -> dict[str, str]:
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    return {i["event_id"]["S"]: i.get("kind", {}).get("S", "") for i in items}


def test_each_concept_writes_under_its_own_namespace(cloud_env: dict[str, str]) -> None:
    table = cloud_env["IDEMPOTENCY_TABLE"]
    assert Idempotency(table).claim("E-1", kind="enrich_match")
    assert Cooldowns(table).start("MP-1", "mall-3", seconds=60)
    assert RateWindows(table).hit("abcd", window=7, limit=5, expires_at=10_000) == 1
    assert Counters(table).next("case:MP-2026") == 1
    assert _keys(table) == {"event:E-1": "enrich_match", "cooldown:MP-1:mall-3": "cooldown",
                            "rate:abcd:7": "rate", "counter:case:MP-2026": "counter"}


def test_an_event_id_spelled_like_a_counter_cannot_touch_the_counter(
        cloud_env: dict[str, str]) -> None:
    """The collision the namespaces close: one table, ids in the shared id grammar."""
    table = cloud_env["IDEMPOTENCY_TABLE"]
    counters, idem = Counters(table), Idempotency(table)
    assert counters.next("case:MP-2026") == 1
    assert idem.claim("counter:case:MP-2026")   # an event id that looks like the counter
    idem.release("counter:case:MP-2026")        # releasing it deletes its own item only
    assert counters.next("case:MP-2026") == 2   # the sequence goes on: no case id reused
    assert idem.claim("cooldown:MP-1:mall-3")
    assert Cooldowns(table).start("MP-1", "mall-3", seconds=60)  # nor a cooldown's


def test_counter_keys_are_those_existing_tables_already_hold(cloud_env: dict[str, str]) -> None:
    """Case-id counters written before the namespaces go on from where they were."""
    table = cloud_env["IDEMPOTENCY_TABLE"]
    aws.client("dynamodb").put_item(TableName=table, Item={
        "event_id": {"S": "counter:case:MP-2026"}, "n": {"N": "41"}, "kind": {"S": "counter"}})
    assert Counters(table).next("case:MP-2026") == 42
    assert state_key("rate", "0123456789abcdef", 29_000_000) == "rate:0123456789abcdef:29000000"


def test_a_full_rate_window_counts_nothing_more(cloud_env: dict[str, str]) -> None:
    rates = RateWindows(cloud_env["IDEMPOTENCY_TABLE"])
    assert [rates.hit("tok", window=1, limit=2, expires_at=999) for _ in range(3)] == [1, 2, None]
    assert rates.hit("tok", window=2, limit=2, expires_at=999) == 1  # the next minute


def test_a_cooldown_cancelled_after_a_failure_opens_again(cloud_env: dict[str, str]) -> None:
    now = [1_800_000_000.0]
    cool = Cooldowns(cloud_env["IDEMPOTENCY_TABLE"], clock=lambda: now[0])
    assert cool.start("MP-1", "s1", seconds=600)
    assert not cool.start("MP-1", "s1", seconds=600)
    cool.cancel("MP-1", "s1")
    assert cool.start("MP-1", "s1", seconds=600)
    now[0] += 601                                   # expired, even before TTL deletes it
    assert cool.start("MP-1", "s1", seconds=600)


def test_closing_a_case_queues_the_typed_removal_command(cloud_env: dict[str, str]) -> None:
    deps = cases.cases_from_env()
    deps.cases.upsert("MP-2026-0009", {"status": "open", "agency": "Met"})
    cases.close(deps.cases, cloud_env["INDEXER_QUEUE_URL"], "MP-2026-0009", closed_by="Met")
    msgs = aws.client("sqs").receive_message(QueueUrl=cloud_env["INDEXER_QUEUE_URL"],
                                             MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = [json.loads(m["Body"]) for m in msgs.get("Messages", [])]
    bodies = [b for b in bodies if b.get("Event") != "s3:TestEvent"]  # S3's, on setup
    assert len(bodies) == 1
    command_id = bodies[0].pop("command_id")     # the redelivery key (is_uuid7: new_id's)
    assert is_uuid7(command_id)
    assert bodies == [{"action": "remove", "watchlist": "missing", "person_id": "MP-2026-0009"}]
    assert RemoveCommand.parse({**bodies[0], "command_id": command_id}) == RemoveCommand(
        watchlist="missing", person_id="MP-2026-0009", command_id=command_id)


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "remove", "watchlist": "vip", "person_id": "x"}, "watchlist"),
    ({"action": "remove", "watchlist": "missing", "person_id": "a/b"}, "person_id"),
    ({"action": "remove", "watchlist": "missing"}, "person_id"),       # missing field
])
def test_a_malformed_removal_is_refused_naming_the_field(cloud_env: dict[str, str],
                                                          body: dict[str, str],
                                                          field: str) -> None:
    with pytest.raises(EventError, match=field):
        RemoveCommand.parse(body)
    out = gallery_indexer.handle_message(body, gallery_indexer.indexer_from_env())
    assert out[0]["status"] == "rejected" and field in out[0]["reason"]
