"""Settings of the Lambdas: one typed model per function, read from its environment once.

Like the edge's and the dashboard's settings, each model is strict and bounded and
fails with :class:`~oneeye.errors.ConfigError` naming the key path
(``amber_alert.ALERT_COOLDOWN_S: Input should be a valid integer``). The handlers
validate them at cold start (:class:`oneeye.cloud.common.ColdStart`) and build their
clients once per container. ``make docs`` renders these models into the variable
reference of ``cloud/README.md``, so the documentation is the code.

Every variable is declared once, in the small model that owns it; a function's model
combines those it reads. Adding a setting is one line in one of them (and the
template's ``Environment`` when the stack must set it). An empty variable counts as
unset, because SAM passes an empty optional parameter through as ``""``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from oneeye.cloud.uploads import MAX_PHOTO_BYTES
from oneeye.config import validate
from oneeye.types import WATCHLISTS

S = TypeVar("S", bound="LambdaSettings")


class LambdaSettings(BaseModel):
    """Base of the functions' settings: fields are environment variables (by alias)."""

    # The environment holds far more than our variables (PATH, AWS_*), so unknown
    # keys are ignored here; the template test checks that each function gets the
    # variables its model requires.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @classmethod
    def from_env(cls: type[S], environ: Mapping[str, str] | None = None, *,
                 root: str = "") -> S:
        """Validate this function's variables from ``environ`` (default: ``os.environ``).

        Raises ConfigError listing every bad or missing variable as ``root.NAME``.
        """
        env = os.environ if environ is None else environ
        data = {field.alias: env[field.alias] for field in cls.model_fields.values()
                if field.alias and env.get(field.alias, "") != ""}
        return validate(cls, data, root=root or cls.__name__)


# --- what several functions share ----------------------------------------------------


class IdempotencySettings(LambdaSettings):
    idempotency_table: str = Field(
        alias="IDEMPOTENCY_TABLE", min_length=3,
        description="DynamoDB state table (pk event_id, TTL expires_at), one key namespace "
        "per concept: event: (idempotency), cooldown:, rate:, counter:")


class BucketSettings(LambdaSettings):
    oneeye_bucket: str = Field(alias="ONEEYE_BUCKET", min_length=3, max_length=63,
                               description="the data bucket: uploads/, gallery/, status/, "
                               "snapshots/, audit/")


class CasesTableSettings(LambdaSettings):
    cases_table: str = Field(alias="CASES_TABLE", min_length=3,
                             description="DynamoDB table of missing-person cases (pk case_id)")


class AgenciesTableSettings(LambdaSettings):
    agencies_table: str = Field(
        alias="AGENCIES_TABLE", min_length=3,
        description="DynamoDB table of agency tokens (hashes only)")


class UploadLimitSettings(LambdaSettings):
    upload_max_bytes: int = Field(MAX_PHOTO_BYTES, alias="UPLOAD_MAX_BYTES", ge=1024,
                                  le=50 * 1024 * 1024,
                                  description="largest photo accepted, bytes (the presigned "
                                  "POST's limit; the indexer re-checks it)")


class UploadGrantSettings(BucketSettings, CasesTableSettings, AgenciesTableSettings,
                          UploadLimitSettings):
    """What grants an upload and later reports on it (``upload_url``, ``upload_status``)."""

    upload_url_ttl_s: int = Field(300, alias="UPLOAD_URL_TTL_S", ge=30, le=3600,
                                  description="seconds a presigned upload stays valid; a "
                                  "pending upload older than this (+60 s) is reported expired")


class DeviceMessageSettings(IdempotencySettings):
    """What every handler of device messages reads (see ``DeviceMessageDeps``)."""

    desk_topic_arn: str = Field(alias="DESK_TOPIC_ARN", min_length=20,
                                description="SNS topic of oneeye.desk/1 events (→ dashboards)")
    device_registry_ttl_s: float = Field(
        60.0, alias="DEVICE_REGISTRY_TTL_S", ge=0, le=3600, description="seconds a thing's "
        "registry attributes (site_id, cameras; iot:DescribeThing) are reused per container; "
        "a device moved to another site is recognised there after at most this long")


class GallerySigningSettings(LambdaSettings):
    gallery_signing_key_secret: str | None = Field(
        None, alias="GALLERY_SIGNING_KEY_SECRET", description="Secrets Manager secret "
        "holding the Ed25519 private key (PKCS#8 PEM) that signs gallery manifests")
    gallery_signing_key_file: str | None = Field(
        None, alias="GALLERY_SIGNING_KEY_FILE", description="the same key as a file (the "
        "local stack's var/local/gallery-signing.key, mode 0600); neither set: manifests "
        "go out unsigned and edges with a public key refuse them")


# --- one model per function ----------------------------------------------------------


class EnrichSettings(DeviceMessageSettings):
    """``enrich_match``: customers matches → ``customer_arrived`` desk cards."""

    customer_api_url: str | None = Field(
        None, alias="CUSTOMER_API_URL", pattern=r"^https?://",
        description="the bank's customer API (GET {url}/customers/{id}); unset: every card "
        "goes out degraded (id only), which is logged once per container")
    customer_api_key: SecretStr | None = Field(
        None, alias="CUSTOMER_API_KEY", description="x-api-key sent to the customer API "
        "(local stack); in AWS use CUSTOMER_API_KEY_SECRET")
    customer_api_key_secret: str | None = Field(
        None, alias="CUSTOMER_API_KEY_SECRET", description="Secrets Manager secret holding "
        "the key (bare or {\"api_key\": …}), read once per container")
    customer_api_timeout_s: float = Field(2.0, alias="CUSTOMER_API_TIMEOUT_S", gt=0, le=30,
                                          description="timeout of one customer API attempt")
    customer_api_attempts: int = Field(3, alias="CUSTOMER_API_ATTEMPTS", ge=1, le=10,
                                       description="attempts on timeouts, 429 and 5xx, with "
                                       "exponential backoff from 0.2 s")
    oneeye_bucket: str | None = Field(
        None, alias="ONEEYE_BUCKET", min_length=3, max_length=63, description="the data "
        "bucket: customers' face crops (from devices with snapshot.customers) go to "
        "snapshots/ and the card carries a presigned snapshot_url; unset: crops dropped")
    snapshot_url_ttl_s: int = Field(86400, alias="SNAPSHOT_URL_TTL_S", ge=60, le=604800,
                                    description="lifetime of a card's presigned crop URL")


class DeviceStateSettings(DeviceMessageSettings):
    """What the device-state functions share (``device_health``, ``device_presence``)."""

    offline_after_s: float = Field(
        90.0, alias="OFFLINE_AFTER_S", ge=10, le=86400, description="a device with no health "
        "report for this long is marked offline by the sweep (3 missed 30 s heartbeats)")
    device_status_every_s: float = Field(
        300.0, alias="DEVICE_STATUS_EVERY_S", ge=0, le=86400, description="at most one "
        "device_status (fps, camera state) per device per this many seconds goes to the desk; "
        "transitions (device_offline / device_online) always go at once")
    it_alert_topic_arn: str | None = Field(
        None, alias="IT_ALERT_TOPIC_ARN", min_length=20, description="SNS topic told about "
        "each device transition (branch IT's email, filter on site_id); unset: desk only")


class DeviceHealthSettings(DeviceStateSettings):
    """``device_health``: device health → device state (+ ``device_status`` on a cadence)."""


class PresenceSettings(DeviceStateSettings):
    """``device_presence``: IoT lifecycle events and the scheduled sweep → transitions."""


class AmberSettings(DeviceMessageSettings, BucketSettings, CasesTableSettings):
    """``amber_alert``: missing-person matches → email/SMS alert and desk banner."""

    alerts_topic_arn: str = Field(alias="ALERTS_TOPIC_ARN", min_length=20,
                                  description="SNS topic of email/SMS alerts")
    alert_cooldown_s: int = Field(600, alias="ALERT_COOLDOWN_S", ge=0, le=86400,
                                  description="at most one email/SMS per case per site in "
                                  "this window (banners are not limited)")
    snapshot_url_ttl_s: int = Field(86400, alias="SNAPSHOT_URL_TTL_S", ge=60, le=604800,
                                    description="validity of the snapshot link in alerts "
                                    "(S3 presigning allows at most 7 days)")
    alert_email_from: str | None = Field(
        None, alias="ALERT_EMAIL_FROM", min_length=3, max_length=254,
        description="verified SES identity the case contact's email is sent from; unset: "
        "email contacts are recorded as failed (SMS contacts still go out)")


class IndexerSettings(IdempotencySettings, BucketSettings, UploadLimitSettings,
                      AgenciesTableSettings, GallerySigningSettings):
    """``gallery_indexer``: photos, removals and learning commands → new gallery versions."""

    cases_table: str | None = Field(None, alias="CASES_TABLE", min_length=3,
                                    description="cases table, updated when a missing "
                                    "person's photo is accepted; unset: not updated")
    gallery_notify: str = Field(
        "iot-data", alias="GALLERY_NOTIFY", pattern=r"^(iot-data|none|(mqtt|tcp)://.+)$",
        description="how new versions are announced: iot-data (AWS IoT Core), "
        "mqtt://host:port (local stack) or none")
    learn_watchlists: str = Field(
        "", alias="LEARN_WATCHLISTS",
        description="comma-separated watchlists that learn from desk verdicts (opt-in; "
        "README 'Learning from verdicts'): edges then send a track's encoding with each "
        "accepted match, and Confirm / Not this person add templates; empty: none")

    @field_validator("learn_watchlists")
    @classmethod
    def _known_watchlists(cls, value: str) -> str:
        unknown = [w for w in value.split(",") if w and w not in WATCHLISTS]
        if unknown:
            raise ValueError(f"unknown watchlist {', '.join(unknown)}: a comma-separated list "
                             f"of {', '.join(WATCHLISTS)}")
        return value


class UploadUrlSettings(IdempotencySettings, UploadGrantSettings):
    """``upload_url``: an agency's case form → a presigned POST for the photo."""

    upload_rate_per_min: int = Field(30, alias="UPLOAD_RATE_PER_MIN", ge=1, le=10000,
                                     description="uploads per agency token per calendar "
                                     "minute; more get 429 with Retry-After")


class UploadStatusSettings(UploadGrantSettings):
    """``upload_status``: what became of an upload (pending, accepted, rejected)."""


class CasesSettings(BucketSettings, CasesTableSettings, AgenciesTableSettings):
    """``cases``: an agency lists and closes its cases."""

    indexer_queue_url: str = Field(alias="INDEXER_QUEUE_URL", pattern=r"^https?://",
                                   description="SQS queue of the gallery indexer (closing a "
                                   "case sends the removal command there)")


#: Function name (``cloud/lambdas/<name>``) → its settings model.
FUNCTIONS: dict[str, type[LambdaSettings]] = {
    "enrich_match": EnrichSettings,
    "device_health": DeviceHealthSettings,
    "device_presence": PresenceSettings,
    "amber_alert": AmberSettings,
    "gallery_indexer": IndexerSettings,
    "upload_url": UploadUrlSettings,
    "upload_status": UploadStatusSettings,
    "cases": CasesSettings,
}
