"""SNS HTTP message signing (the local stack) and verification (the dashboard).

Amazon SNS signs each HTTP(S) delivery: the *string to sign* is a fixed list of
``Key\\nValue\\n`` pairs (the list differs between ``Notification`` and the two
confirmation types), signed with RSA PKCS#1 v1.5 over SHA1 (``SignatureVersion``
"1") or SHA256 ("2"), base64 in ``Signature``; the public certificate is at
``SigningCertURL``.

:class:`Verifier` accepts a message only if all of these hold:

- ``Type`` is one of the three SNS types and every signed field is a string;
- ``TopicArn`` is on the allow-list (checked before any network access, so junk
  never makes the dashboard fetch anything);
- ``SigningCertURL`` is ``https://sns.<region>.amazonaws.com[.cn]/….pem`` — or is
  an exact URL explicitly *pinned* to a certificate the operator configured (the
  local stack's self-generated one); pinned URLs are never fetched;
- the certificate is currently valid and, unless pinned, names
  ``sns.amazonaws.com`` (subject CN or a DNS SAN);
- the signature verifies;
- the signed ``Timestamp`` is at most ``max_age_s`` old (default 1 h) and not
  more than 5 minutes in the future, so a captured message cannot be replayed.

Certificates are fetched once per URL and cached. We do not walk the chain of
the signing certificate itself: like AWS's own message validators, trust comes
from fetching it over verified TLS from an SNS host.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from oneeye.errors import SignatureError
from oneeye.types import parse_time

log = logging.getLogger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
TYPES = (NOTIFICATION, SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION)

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                      "TopicArn", "Type")
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1, "2": hashes.SHA256,
}
_SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$")
_SNS_CERT_NAME = re.compile(r"^sns(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")
MAX_CERT_BYTES = 64 * 1024
#: Messages signed longer ago than this are refused: a captured message cannot be replayed
#: later (SNS retries an HTTP delivery for minutes, with the template's policy ~10 min).
DEFAULT_MAX_AGE_S = 3600.0
#: How far a sender's clock may run ahead of ours.
MAX_CLOCK_SKEW_S = 300.0

Fetch = Callable[[str], bytes]


def string_to_sign(msg: Mapping[str, Any]) -> bytes:
    """The exact bytes SNS signs for ``msg`` (a decoded SNS JSON body)."""
    kind = msg.get("Type")
    keys: tuple[str, ...]
    if kind == NOTIFICATION:
        keys = _NOTIFICATION_KEYS
        optional = {"Subject"}
    elif kind in (SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION):
        keys = _CONFIRMATION_KEYS
        optional = set[str]()
    else:
        raise SignatureError(f"unknown SNS message Type {kind!r}")
    parts: list[str] = []
    for key in keys:
        value = msg.get(key)
        if value is None and key in optional:
            continue
        if not isinstance(value, str):
            raise SignatureError(f"SNS field {key!r} missing or not a string")
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def sign(msg: Mapping[str, Any], key_pem: bytes, cert_url: str,
         version: str = "2") -> dict[str, Any]:
    """Return a copy of ``msg`` with SignatureVersion, SigningCertURL and Signature set."""
    if version not in _HASHES:
        raise ValueError(f"SignatureVersion must be '1' or '2', not {version!r}")
    key = _private_key(key_pem)
    out = dict(msg)
    out["SignatureVersion"] = version
    out["SigningCertURL"] = cert_url
    sig = key.sign(string_to_sign(out), padding.PKCS1v15(), _HASHES[version]())
    out["Signature"] = base64.b64encode(sig).decode("ascii")
    return out


def generate_signing_cert(common_name: str = "sns.amazonaws.com", *, days: int = 365,
                          not_before: datetime | None = None) -> tuple[bytes, bytes]:
    """A fresh RSA key and self-signed certificate (PEM) for the local stack and tests."""

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


@functools.lru_cache(maxsize=8)
def _private_key(key_pem: bytes) -> rsa.RSAPrivateKey:
    # parsing validates the RSA key (slow); a signer reuses one key for every message
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SNS signing needs an RSA private key")
    return key


def is_sns_url(url: str, *, suffix: str = "") -> bool:
    """True for ``https://sns.<region>.amazonaws.com[.cn]/…`` (path ending in ``suffix``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (parts.scheme == "https" and parts.port in (None, 443)
            and parts.username is None and parts.password is None
            and bool(_SNS_HOST.match(parts.hostname or ""))
            and parts.path.endswith(suffix))


def default_fetch(url: str, timeout_s: float = 5.0) -> bytes:
    import requests

    try:
        resp = requests.get(url, timeout=timeout_s, allow_redirects=False, stream=True)
        resp.raise_for_status()
        data = resp.raw.read(MAX_CERT_BYTES + 1, decode_content=True)
    except (requests.RequestException, OSError) as exc:
        raise SignatureError(f"cannot fetch signing certificate {url}: {exc}") from exc
    if len(data) > MAX_CERT_BYTES:
        raise SignatureError(f"signing certificate {url} is too large")
    return bytes(data)


class Verifier:
    """Verifies SNS HTTP messages; thread-safe, caches certificates by URL."""

    def __init__(
        self,
        allowed_topics: Iterable[str],
        *,
        pinned_certs: Mapping[str, bytes] | None = None,
        fetch: Fetch | None = None,
        now: Callable[[], datetime] | None = None,
        max_age_s: float | None = DEFAULT_MAX_AGE_S,
    ) -> None:
        self.allowed_topics = frozenset(allowed_topics)
        self.max_age_s = max_age_s
        self._pinned: dict[str, x509.Certificate] = {}
        for url, pem in (pinned_certs or {}).items():
            try:
                self._pinned[url] = x509.load_pem_x509_certificate(pem)
            except ValueError as exc:
                raise SignatureError(f"pinned certificate for {url} is not PEM: {exc}") from exc
        self._fetch = fetch or default_fetch
        self._now = now or (lambda: datetime.now(UTC))
        self._cache: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def verify(self, msg: Mapping[str, Any]) -> None:
        """Return if ``msg`` is authentic and allowed; raise :class:`SignatureError` if not."""
        if not isinstance(msg, Mapping):
            raise SignatureError("SNS message is not a JSON object")
        if msg.get("Type") not in TYPES:
            raise SignatureError(f"unknown SNS message Type {msg.get('Type')!r}")
        topic = msg.get("TopicArn")
        if topic not in self.allowed_topics:
            raise SignatureError(f"topic {topic!r} is not allowed")
        version = msg.get("SignatureVersion")
        if version not in _HASHES:
            raise SignatureError(f"unsupported SignatureVersion {version!r}")
        signature = msg.get("Signature")
        if not isinstance(signature, str):
            raise SignatureError("Signature missing")
        try:
            raw_sig = base64.b64decode(signature, validate=True)
        except ValueError as exc:
            raise SignatureError("Signature is not base64") from exc
        payload = string_to_sign(msg)
        cert = self.certificate(msg.get("SigningCertURL"))
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("signing certificate does not hold an RSA key")
        try:
            key.verify(raw_sig, payload, padding.PKCS1v15(), _HASHES[version]())
        except InvalidSignature as exc:
            raise SignatureError("signature does not verify") from exc
        self._check_fresh(msg.get("Timestamp"))

    def _check_fresh(self, timestamp: object) -> None:
        """The signed ``Timestamp`` must be within ``max_age_s`` (replays of old messages)."""
        if self.max_age_s is None:
            return
        try:
            sent = parse_time(str(timestamp))
        except ValueError as exc:
            raise SignatureError(f"Timestamp {timestamp!r} is not a timestamp") from exc
        age = (self._now() - sent).total_seconds()
        if age > self.max_age_s:
            raise SignatureError(f"message is stale: sent {age:.0f} s ago (the window is "
                                 f"{self.max_age_s:.0f} s)")
        if age < -MAX_CLOCK_SKEW_S:
            raise SignatureError(f"message Timestamp is {-age:.0f} s in the future")

    def certificate(self, url: object) -> x509.Certificate:
        if not isinstance(url, str) or not url:
            raise SignatureError("SigningCertURL missing")
        pinned = self._pinned.get(url)
        if pinned is not None:
            self._check_validity(pinned, url)
            return pinned
        if not is_sns_url(url, suffix=".pem"):
            raise SignatureError(f"SigningCertURL {url!r} is not an https SNS .pem URL")
        with self._lock:
            cert = self._cache.get(url)
        if cert is None:
            pem = self._fetch(url)
            try:
                cert = x509.load_pem_x509_certificate(pem)
            except ValueError as exc:
                raise SignatureError(f"signing certificate {url} is not PEM") from exc
            if not _names_sns(cert):
                raise SignatureError(f"signing certificate {url} is not issued to SNS")
            with self._lock:
                self._cache[url] = cert
            log.info("cached SNS signing certificate %s", url)
        self._check_validity(cert, url)
        return cert

    def _check_validity(self, cert: x509.Certificate, url: str) -> None:
        now = self._now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SignatureError(f"signing certificate {url} is not valid now")


def _names_sns(cert: x509.Certificate) -> bool:
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names += san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    return any(_SNS_CERT_NAME.match(n) for n in names)
