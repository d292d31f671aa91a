"""oneeye.sns: string to sign, signing, and every way verification must refuse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from oneeye import sns
from oneeye.errors import SignatureError
from oneeye.types import format_time, utc_now

TOPIC = "arn:aws:sns:eu-west-1:123456789012:oneeye-desk"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return sns.generate_signing_cert()


def notification(**extra: str) -> dict[str, str]:
    msg = {"Type": "Notification", "MessageId": "m-1", "TopicArn": TOPIC,
           "Message": json.dumps({"hello": "world"}), "Timestamp": utc_now()}
    msg.update(extra)
    return msg


def confirmation(topic: str = TOPIC) -> dict[str, str]:
    return {"Type": "SubscriptionConfirmation", "MessageId": "m-2", "TopicArn": topic,
            "Token": "tok", "Message": "You have chosen to subscribe",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
            "Timestamp": utc_now()}


def verifier(keys: tuple[bytes, bytes], calls: list[str] | None = None) -> sns.Verifier:
    def fetch(url: str) -> bytes:
        if calls is not None:
            calls.append(url)
        return keys[1]
    return sns.Verifier([TOPIC], fetch=fetch)


def test_string_to_sign_notification_order_and_optional_subject() -> None:
    msg = notification(Timestamp="2026-01-01T00:00:00.000Z")
    assert sns.string_to_sign(msg) == (
        f"Message\n{msg['Message']}\nMessageId\nm-1\nTimestamp\n2026-01-01T00:00:00.000Z\n"
        f"TopicArn\n{TOPIC}\nType\nNotification\n").encode()
    with_subject = sns.string_to_sign(notification(Subject="Hi"))
    assert b"MessageId\nm-1\nSubject\nHi\nTimestamp\n" in with_subject


def test_string_to_sign_confirmation_includes_token_and_url() -> None:
    text = sns.string_to_sign(confirmation()).decode()
    keys = [line for i, line in enumerate(text.split("\n")) if i % 2 == 0 and line]
    assert keys == ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                    "TopicArn", "Type"]


@pytest.mark.parametrize("version", ["1", "2"])
def test_valid_signatures_verify_and_cert_is_fetched_once(keys: tuple[bytes, bytes],
                                                          version: str) -> None:
    calls: list[str] = []
    v = verifier(keys, calls)
    v.verify(sns.sign(notification(), keys[0], CERT_URL, version))
    v.verify(sns.sign(confirmation(), keys[0], CERT_URL, version))
    assert calls == [CERT_URL]


def test_version_1_signature_does_not_pass_as_version_2(keys: tuple[bytes, bytes]) -> None:
    msg = sns.sign(notification(), keys[0], CERT_URL, "1")
    msg["SignatureVersion"] = "2"
    with pytest.raises(SignatureError, match="does not verify"):
        verifier(keys).verify(msg)


def test_tampered_message_fails(keys: tuple[bytes, bytes]) -> None:
    msg = sns.sign(notification(), keys[0], CERT_URL)
    msg["Message"] = msg["Message"].replace("world", "mallory")
    with pytest.raises(SignatureError, match="does not verify"):
        verifier(keys).verify(msg)


def test_signature_by_another_key_fails(keys: tuple[bytes, bytes]) -> None:
    other_key, _ = sns.generate_signing_cert()
    with pytest.raises(SignatureError, match="does not verify"):
        verifier(keys).verify(sns.sign(notification(), other_key, CERT_URL))


@pytest.mark.parametrize("url", [
    "http://sns.eu-west-1.amazonaws.com/cert.pem",            # not https
    "https://sns.eu-west-1.amazonaws.com.evil.com/cert.pem",  # wrong host
    "https://evil.com/sns.eu-west-1.amazonaws.com/cert.pem",
    "https://sns.eu-west-1.amazonaws.com/cert.txt",           # not a .pem
    "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",      # odd port
    "https://user@sns.eu-west-1.amazonaws.com/cert.pem",
    "",
])
def test_bad_cert_urls_are_refused_without_fetching(keys: tuple[bytes, bytes], url: str) -> None:
    calls: list[str] = []
    with pytest.raises(SignatureError):
        verifier(keys, calls).verify(sns.sign(notification(), keys[0], url))
    assert calls == []


def test_china_region_host_is_accepted(keys: tuple[bytes, bytes]) -> None:
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem"
    calls: list[str] = []
    v = verifier(keys, calls)
    v.verify(sns.sign(notification(), keys[0], url))   # raises SignatureError if refused
    assert calls == [url]                               # the cert came from the .cn host
    tampered = {**sns.sign(notification(), keys[0], url), "Message": "{}"}
    with pytest.raises(SignatureError, match="does not verify"):
        v.verify(tampered)                              # and it was really checked


def test_unknown_topic_and_unknown_topic_confirmation_refused(keys: tuple[bytes, bytes]) -> None:
    calls: list[str] = []
    other = "arn:aws:sns:eu-west-1:999999999999:other"
    with pytest.raises(SignatureError, match="not allowed"):
        verifier(keys, calls).verify(sns.sign(notification(TopicArn=other), keys[0], CERT_URL))
    with pytest.raises(SignatureError, match="not allowed"):
        verifier(keys, calls).verify(sns.sign(confirmation(other), keys[0], CERT_URL))
    assert calls == []


def test_cert_not_naming_sns_refused(keys: tuple[bytes, bytes]) -> None:
    key, cert = sns.generate_signing_cert("evil.example.com")
    v = sns.Verifier([TOPIC], fetch=lambda url: cert)
    with pytest.raises(SignatureError, match="not issued to SNS"):
        v.verify(sns.sign(notification(), key, CERT_URL))


def test_expired_cert_refused() -> None:
    key, cert = sns.generate_signing_cert(
        days=1, not_before=datetime.now(UTC) - timedelta(days=3))
    v = sns.Verifier([TOPIC], fetch=lambda url: cert)
    with pytest.raises(SignatureError, match="not valid now"):
        v.verify(sns.sign(notification(), key, CERT_URL))


def test_pinned_cert_trusted_only_for_its_exact_url() -> None:
    key, cert = sns.generate_signing_cert("oneeye-local")
    local_url = "http://127.0.0.1:8080/sns/signing-cert.pem"
    v = sns.Verifier([TOPIC], pinned_certs={local_url: cert})
    v.verify(sns.sign(notification(), key, local_url, "1"))
    with pytest.raises(SignatureError, match="not an https SNS"):
        v.verify(sns.sign(notification(), key, local_url + "?x"))
    # not pinned: the same local URL is refused by a default verifier
    with pytest.raises(SignatureError):
        sns.Verifier([TOPIC]).verify(sns.sign(notification(), key, local_url))


@pytest.mark.parametrize("mutate", [
    lambda m: m.pop("Signature"),
    lambda m: m.update(Signature="%%%not-base64"),
    lambda m: m.update(SignatureVersion="3"),
    lambda m: m.update(Type="Bogus"),
    lambda m: m.pop("MessageId"),
    lambda m: m.update(Timestamp=12),
])
def test_malformed_messages_refused(keys: tuple[bytes, bytes], mutate: object) -> None:
    msg = sns.sign(notification(), keys[0], CERT_URL)
    mutate(msg)  # type: ignore[operator]
    with pytest.raises(SignatureError):
        verifier(keys).verify(msg)


def test_fetch_failure_and_garbage_cert_are_signature_errors(keys: tuple[bytes, bytes]) -> None:
    def broken(url: str) -> bytes:
        raise SignatureError("cannot fetch")
    msg = sns.sign(notification(), keys[0], CERT_URL)
    with pytest.raises(SignatureError, match="cannot fetch"):
        sns.Verifier([TOPIC], fetch=broken).verify(msg)
    with pytest.raises(SignatureError, match="not PEM"):
        sns.Verifier([TOPIC], fetch=lambda url: b"garbage").verify(msg)


def test_is_sns_url() -> None:
    assert sns.is_sns_url("https://sns.us-gov-west-1.amazonaws.com/?Action=ConfirmSubscription")
    assert not sns.is_sns_url("https://sns.amazonaws.com.attacker.net/")
    assert not sns.is_sns_url("https://[::1/")


def test_freshness_window_refuses_old_and_future_messages(keys: tuple[bytes, bytes]) -> None:
    now = datetime.now(UTC)
    v = sns.Verifier([TOPIC], fetch=lambda url: keys[1], max_age_s=3600)
    fresh = sns.sign(notification(Timestamp=format_time(now - timedelta(minutes=59))),
                     keys[0], CERT_URL)
    v.verify(fresh)
    for when, why in [(now - timedelta(minutes=61), "stale"),
                      (now - timedelta(days=2500), "stale"),
                      (now + timedelta(minutes=10), "in the future")]:
        with pytest.raises(SignatureError, match=why):
            v.verify(sns.sign(notification(Timestamp=format_time(when)), keys[0], CERT_URL))
    with pytest.raises(SignatureError, match="not a timestamp"):
        v.verify(sns.sign(notification(Timestamp="yesterday"), keys[0], CERT_URL))
