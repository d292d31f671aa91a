"""enrich_match: a customers-watchlist match in, a ``customer_arrived`` desk card out.

It joins the match with the bank's customer record (the device holds no personal
data) and publishes a ``customer_arrived`` card on the desk topic. When the customer
API is down the card still goes out, ``degraded`` with "customer C-1042 arrived,
details unavailable": a teller seeing a bare id beats a teller seeing nothing. An id
the API does not know (404) also goes out degraded, saying so.

A site whose devices send face crops for customers (the edge's ``snapshot.customers:
true``; a device belongs to one site, so this is the per-site opt-in) gets the crop kept
at ``snapshots/{event_id}.jpg`` and a presigned ``snapshot_url`` on the card, shown beside
the profile photo; without ``ONEEYE_BUCKET`` the crop is dropped. The crop itself never
rides on SNS (256 KB cap).

The function takes its collaborators as arguments (the lookup, the idempotency
table, the topic) so tests and the bench can drive it directly; the handler builds
them once per container from :class:`~oneeye.cloud.settings.EnrichSettings` with
:func:`enrich_deps`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oneeye import alerting, events
from oneeye.alerting import skew_note
from oneeye.cloud.common import DeviceMessageDeps, Result, clip, once_per_match, store_snapshot
from oneeye.cloud.customers import CustomerCard, customer_api
from oneeye.cloud.dal import store
from oneeye.cloud.dal.state import Idempotency
from oneeye.cloud.devices import registry
from oneeye.cloud.settings import EnrichSettings
from oneeye.errors import CustomerApiUnavailable, CustomerNotFound

log = logging.getLogger(__name__)

Lookup = Callable[[str], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class EnrichDeps(DeviceMessageDeps):
    #: The customer record lookup (the customer API's ``get``); None: not configured.
    lookup: Lookup | None = None
    #: Where customers' face crops are kept (``snapshots/``); None: crops are dropped.
    bucket: store.Bucket | None = None
    snapshot_url_ttl_s: int = 86400


def enrich_match(message: Any, deps: EnrichDeps) -> Result:
    """Validate one ``oneeye.match/1`` and publish its ``customer_arrived`` card once."""
    return once_per_match(message, deps, watchlist="customers", handler="enrich_match",
                          work=lambda match: _publish_arrival(match, deps))


def _publish_arrival(match: events.MatchEvent, deps: EnrichDeps) -> Result:
    customer: dict[str, Any] | None = None
    degraded = False
    who = match.person_id
    try:
        if deps.lookup is None:  # said once at cold start, not per event
            raise CustomerApiUnavailable("no customer API configured")
        customer = _customer_card(deps.lookup(match.person_id), match.person_id)
        message = f"{customer.get('name') or who} arrived"
    except CustomerNotFound:
        degraded = True
        message = f"customer {who} arrived, not found in the customer directory"
        log.warning("enrich_match: customer %s unknown to the customer API", who)
    except CustomerApiUnavailable:
        degraded = True
        message = f"customer {who} arrived, details unavailable"
    if match.clock_skew_s is not None:   # the card's time is the receipt's: say why
        message += f" (time of receipt: {skew_note(match.clock_skew_s)})"
    snapshot_url = (store_snapshot(match, deps.bucket, expires_s=deps.snapshot_url_ttl_s,
                                   handler="enrich_match") if deps.bucket else None)
    desk = events.DeskEvent(
        event_id=match.event_id, kind="customer_arrived", site_id=match.site_id,
        observed_at=match.observed_at, message=clip(message), degraded=degraded,
        device_id=match.device_id, match=_without_snapshot(match), customer=customer,
        # decided here, once: the desk shows the carried words, never recomputes them
        strength=alerting.strength(match.distance, match.margin),
        strength_text=alerting.strength_text(match.distance, match.margin),
        snapshot_url=snapshot_url,
    )
    message_id = store.publish(deps.desk_topic_arn, desk.to_json(), site_id=match.site_id)
    log.info("enrich_match: %s at %s → desk (%s)%s", who, match.site_id, message_id,
             " degraded" if degraded else "")
    return {"status": "published", "event_id": match.event_id, "degraded": degraded,
            "message_id": message_id}


def _customer_card(record: dict[str, Any], customer_id: str) -> dict[str, Any]:
    """The customer record in the typed shape the desk renders (:class:`CustomerCard`)."""
    return CustomerCard.from_record(record, customer_id).model_dump(exclude_none=True)


def _without_snapshot(match: events.MatchEvent) -> events.MatchEvent:
    # SNS messages are capped at 256 KB: the crop goes by URL (snapshot_url), never inline.
    return match.model_copy(update={"snapshot_jpeg": None}) if match.snapshot_jpeg else match


def enrich_deps(settings: EnrichSettings) -> EnrichDeps:
    api = customer_api(settings)
    return EnrichDeps(idempotency=Idempotency(settings.idempotency_table),
                      desk_topic_arn=settings.desk_topic_arn,
                      lookup=api.get if api is not None else None, registry=registry(settings),
                      bucket=store.Bucket(settings.oneeye_bucket) if settings.oneeye_bucket
                      else None, snapshot_url_ttl_s=settings.snapshot_url_ttl_s)


def enrich_from_env() -> EnrichDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return enrich_deps(EnrichSettings.from_env(root="enrich_match"))
