"""SNS-faithful HTTP delivery of the local stack, against a real HTTP endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneeye import sns
from oneeye.errors import SignatureError
from oneeye.local.filter_policy import matches
from oneeye.local.settings import SnsDeliverySettings
from oneeye.local.sns_delivery import Signer, SnsDelivery
from tests.http_support import TOPIC, Endpoint, envelope
from tests.net_support import free_port
from tests.wait import wait_until


@pytest.fixture
def delivery(tmp_path: Path) -> Iterator[SnsDelivery]:
    signer = Signer(tmp_path / "sns", "us-east-1")
    d = SnsDelivery(tmp_path / "sns.sqlite3", signer, confirm_base_url="http://127.0.0.1:9",
                    settings=SnsDeliverySettings(first_retry_s=0.05, max_retry_s=0.3))
    yield d
    d.stop()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint(free_port())
    yield ep
    ep.stop()


def confirmation_marked(d: SnsDelivery, arn: str) -> None:
    """Wait until the confirmation's row is marked delivered (the endpoint answers first)."""
    wait_until(lambda: any(x.delivered for x in d.deliveries(arn)
                           if x.kind == "SubscriptionConfirmation"), 30,
               "the confirmation marked delivered")


def verifier(d: SnsDelivery) -> sns.Verifier:
    return sns.Verifier([TOPIC], pinned_certs={d.signer.cert_url: d.signer.cert_file.read_bytes()})


def test_confirmation_first_then_signed_notifications_with_attributes(
        delivery: SnsDelivery, endpoint: Endpoint) -> None:
    endpoint.confirm_with = delivery
    endpoint.start()
    delivery.accept_envelope(envelope('{"hello": 1}'))  # no subscriber yet: nobody gets it
    sub = delivery.subscribe(TOPIC, endpoint.url)
    delivery.accept_envelope(envelope('{"hello": 2}', mid="m-2"))
    msgs = endpoint.wait_for(2)
    assert [m["Type"] for m in msgs] == ["SubscriptionConfirmation", "Notification"]
    v = verifier(delivery)
    for m in msgs:
        v.verify(m)
    note = msgs[1]
    assert note["Message"] == '{"hello": 2}' and note["SignatureVersion"] == "2"
    assert note["MessageAttributes"] == {"site_id": {"Type": "String", "Value": "site-1"}}
    headers = endpoint.received[1][0]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-subscription-arn"] == sub.arn
    assert delivery.subscription(sub.arn).confirmed  # type: ignore[union-attr]
    # a tampered message no longer verifies: the signature covers the Message
    with pytest.raises(SignatureError):
        v.verify({**note, "Message": '{"hello": 3}'})
    # the same envelope twice (SQS redelivery) is one delivery
    assert delivery.accept_envelope(envelope('{"hello": 2}', mid="m-2")) == 0
    assert [d.message_id for d in delivery.deliveries(sub.arn)].count("m-2") == 1


def test_nothing_delivered_before_confirmation(delivery: SnsDelivery,
                                               endpoint: Endpoint) -> None:
    endpoint.start()  # records but does not confirm
    sub = delivery.subscribe(TOPIC, endpoint.url)
    delivery.accept_envelope(envelope("x"))
    assert [m["Type"] for m in endpoint.wait_for(1)] == ["SubscriptionConfirmation"]
    confirmation_marked(delivery, sub.arn)
    # the notification is held, never attempted, while the subscription is unconfirmed
    [held] = [d for d in delivery.deliveries(sub.arn) if d.kind == "Notification"]
    assert held.attempts == 0 and delivery.pending(sub.arn) == 1
    assert delivery.confirm(TOPIC, "wrong-token") is None
    assert not delivery.subscription(sub.arn).confirmed  # type: ignore[union-attr]
    assert len(endpoint.received) == 1
    assert delivery.confirm(TOPIC, sub.token) == sub.arn
    assert endpoint.wait_for(2)[1]["Message"] == "x"


def test_filter_policy_on_site_id(delivery: SnsDelivery, endpoint: Endpoint) -> None:
    endpoint.confirm_with = delivery
    endpoint.start()
    delivery.subscribe(TOPIC, endpoint.url, {"site_id": ["site-2"]})
    endpoint.wait_for(1)
    assert delivery.accept_envelope(envelope("for site 1", "site-1", "a")) == 0
    assert delivery.accept_envelope(envelope("for site 2", "site-2", "b")) == 1
    msgs = endpoint.wait_for(2)
    assert [m["Message"] for m in msgs[1:]] == ["for site 2"]


def test_retries_until_an_endpoint_that_was_down_comes_back(
        delivery: SnsDelivery, endpoint: Endpoint) -> None:
    sub = delivery.subscribe(TOPIC, endpoint.url)  # endpoint not listening yet
    for i in range(3):
        delivery.accept_envelope(envelope(f"event {i}", mid=f"m{i}"))
    def confirmation() -> Any:
        return next(d for d in delivery.deliveries(sub.arn)
                    if d.kind == "SubscriptionConfirmation")

    wait_until(lambda: confirmation().attempts >= 2, 30, "two failed attempts with backoff")
    assert "Connection" in (confirmation().last_error or "")
    endpoint.confirm_with = delivery
    endpoint.start()
    msgs = endpoint.wait_for(4)
    assert msgs[0]["Type"] == "SubscriptionConfirmation"
    assert [m["Message"] for m in msgs[1:]] == ["event 0", "event 1", "event 2"]
    # the endpoint answers before the row is marked
    wait_until(lambda: delivery.pending(sub.arn) == 0, 30, "every delivery marked done")


def test_deliveries_survive_a_restart(tmp_path: Path, endpoint: Endpoint) -> None:
    settings = SnsDeliverySettings(first_retry_s=0.05, max_retry_s=0.2)
    signer = Signer(tmp_path / "sns", "us-east-1")
    d1 = SnsDelivery(tmp_path / "db.sqlite3", signer, confirm_base_url="http://x",
                     settings=settings)
    sub = d1.subscribe(TOPIC, endpoint.url)
    d1.confirm(TOPIC, sub.token)
    d1.accept_envelope(envelope("kept", mid="k"))
    d1.stop()
    endpoint.start()
    d2 = SnsDelivery(tmp_path / "db.sqlite3", Signer(tmp_path / "sns", "us-east-1"),
                     confirm_base_url="http://x", settings=settings)
    try:
        d2.start()
        msgs = endpoint.wait_for(2)
        assert "kept" in [m.get("Message") for m in msgs]
        verifier(d2).verify(msgs[-1])  # same signing key after the restart
    finally:
        d2.stop()


@pytest.mark.parametrize(("policy", "attrs", "expected"), [
    ({"site_id": ["site-1"]}, {"site_id": {"Type": "String", "Value": "site-1"}}, True),
    ({"site_id": ["site-1"]}, {"site_id": {"Type": "String", "Value": "site-2"}}, False),
    ({"site_id": ["site-1"]}, {}, False),
    ({"site_id": [{"prefix": "site-"}]}, {"site_id": {"Type": "String", "Value": "site-9"}}, True),
    ({"site_id": [{"anything-but": "site-1"}]},
     {"site_id": {"Type": "String", "Value": "site-1"}}, False),
    ({"site_id": [{"exists": False}]}, {}, True),
    ({"n": [3]}, {"n": {"Type": "Number", "Value": "3"}}, True),
    ({"s": ["b"]}, {"s": {"Type": "String.Array", "Value": '["a", "b"]'}}, True),
])
def test_filter_policy_subset(policy: dict[str, Any], attrs: dict[str, Any],
                              expected: bool) -> None:
    assert matches(policy, attrs) is expected


def test_retry_now_skips_the_backoff_and_unsubscribe_drops_pending(
        tmp_path: Path, endpoint: Endpoint) -> None:
    slow = SnsDelivery(tmp_path / "db.sqlite3", Signer(tmp_path / "sns", "us-east-1"),
                       confirm_base_url="http://x",
                       settings=SnsDeliverySettings(first_retry_s=60, max_retry_s=60))
    try:
        sub = slow.subscribe(TOPIC, endpoint.url)  # endpoint down: next try in ~a minute
        wait_until(lambda: slow.deliveries()[0].attempts, 30, "the first failed attempt")
        endpoint.start()
        slow.retry_now(endpoint.url)  # the stack saw the endpoint come up
        assert [m["Type"] for m in endpoint.wait_for(1)] == ["SubscriptionConfirmation"]
        confirmation_marked(slow, sub.arn)
        slow.accept_envelope(envelope("never sent"))  # held: not confirmed
        # The confirmation's row is marked delivered just after the endpoint has it.
        wait_until(lambda: slow.pending(sub.arn) == 1, 10, "only the held notification pending")
        assert slow.unsubscribe(sub.arn) and slow.pending(sub.arn) == 0
        assert slow.subscription(sub.arn) is None and not slow.unsubscribe(sub.arn)
        assert slow.accept_envelope(envelope("after", mid="z")) == 0
    finally:
        slow.stop()
