"""enrich_match and device_health: edge events in, ``oneeye.desk/1`` out on the desk topic.

``enrich_match`` joins a customers-watchlist match with the bank's customer
record (the device holds no personal data) and publishes a
``customer_arrived`` card. When the customer API is down the card still goes
out, ``degraded`` with "customer C-1042 arrived, details unavailable": a teller
seeing a bare id beats a teller seeing nothing. An id the API does not know
(404) also goes out degraded, saying so.

Both functions take their collaborators as arguments (the lookup, the
idempotency table, the topic) so tests and the bench can drive them directly;
the handlers build them from the environment with :func:`enrich_from_env` /
:func:`health_from_env`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oneeye import events
from oneeye.cloud import store
from oneeye.cloud.common import (
    Result,
    clip,
    event_id_of,
    parse_match,
    rejected,
    run_once,
    sender_rejection,
)
from oneeye.cloud.customers import (
    CustomerApiUnavailable,
    CustomerCard,
    CustomerNotFound,
    api_from_env,
)
from oneeye.cloud.devices import Registry, registry_from_env
from oneeye.errors import EventError

log = logging.getLogger(__name__)

Lookup = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class DeskDeps:
    idempotency: store.Idempotency
    desk_topic_arn: str
    lookup: Lookup | None = None
    #: Where each thing stands (IoT thing attributes); cached per container.
    registry: Registry = field(default_factory=Registry)


def enrich_match(message: Any, deps: DeskDeps) -> Result:
    """Validate one ``oneeye.match/1`` and publish its ``customer_arrived`` card once."""
    match = parse_match(message, watchlist="customers", handler="enrich_match",
                        registry=deps.registry)
    if not isinstance(match, events.MatchEvent):
        return match
    return run_once(deps.idempotency, match.event_id,
                    lambda: _publish_arrival(match, deps), handler="enrich_match")


def _publish_arrival(match: events.MatchEvent, deps: DeskDeps) -> Result:
    lookup = deps.lookup or api_from_env().get
    customer: dict[str, Any] | None = None
    degraded = False
    who = match.person_id
    try:
        customer = _customer_card(lookup(match.person_id), match.person_id)
        message = f"{customer.get('name') or who} arrived"
    except CustomerNotFound:
        degraded = True
        message = f"customer {who} arrived, not found in the customer directory"
        log.warning("enrich_match: customer %s unknown to the customer API", who)
    except CustomerApiUnavailable:
        degraded = True
        message = f"customer {who} arrived, details unavailable"
    desk = events.DeskEvent(
        event_id=match.event_id, kind="customer_arrived", site_id=match.site_id,
        observed_at=match.observed_at, message=clip(message), degraded=degraded,
        device_id=match.device_id, match=_without_snapshot(match), customer=customer,
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
    # SNS messages are capped at 256 KB and the desk needs no face crop for customers.
    return match.model_copy(update={"snapshot_jpeg": None}) if match.snapshot_jpeg else match


def device_health(message: Any, deps: DeskDeps) -> Result:
    """Validate one ``oneeye.health/1`` and forward it as a ``device_status`` desk event."""
    try:
        health = events.parse(message, expect=events.HEALTH)
    except EventError as exc:
        return rejected("device_health", str(exc), event_id=event_id_of(message))
    assert isinstance(health, events.HealthEvent)
    forged = sender_rejection(message, health, deps.registry, "device_health")
    if forged is not None:
        return forged

    def work() -> Result:
        desk = events.DeskEvent(
            event_id=health.event_id, kind="device_status", site_id=health.site_id,
            observed_at=health.sent_at, device_id=health.device_id, health=health,
            message=clip(f"{health.device_id}: camera {health.camera_state}, "
                         f"{health.fps:.1f} fps"),
        )
        message_id = store.publish(deps.desk_topic_arn, desk.to_json(), site_id=health.site_id)
        return {"status": "published", "event_id": health.event_id, "message_id": message_id}

    return run_once(deps.idempotency, health.event_id, work, handler="device_health")


def enrich_from_env() -> DeskDeps:
    return DeskDeps(idempotency=store.Idempotency(store.env("IDEMPOTENCY_TABLE")),
                    desk_topic_arn=store.env("DESK_TOPIC_ARN"), registry=registry_from_env())


health_from_env = enrich_from_env
