"""The gallery indexer's learning side: desk verdicts → templates, reviews, duplicates.

Called by :mod:`oneeye.cloud.functions.gallery_indexer` for the commands of
:mod:`oneeye.cloud.indexer_commands`, and for every accepted enrolment photo (the second-look
check and the duplicate report). Every change goes out as a new signed gallery version
through :func:`publish`, the one write path (edges have it within seconds, as for a photo).

* ``learn`` positive: the encoding becomes a *sighting* template of the person — unless
  it is further than ``far_template_distance`` from all their templates: then it is held
  for review (``review/{watchlist}/{person}/{id}.json``, reason ``far_template``), not
  learnt silently. ``learn`` negative: a *negative* template ("Not this person").
  Both are refused (``learning_off``) for a watchlist not in ``LEARN_WATCHLISTS``.
* A new photo of a person who already has templates, further than
  ``photo_review_distance`` from all of them, is held the same way (reason
  ``unlike_person``) and its upload's status is ``needs_review``.
* ``review`` accept adds a held template; dismiss deletes it. ``remove_template`` drops one.

Every stored gallery is stamped with ``learning.enabled`` for its watchlist, so an edge
sends a track's encoding only for a watchlist that learns.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from oneeye import gallery as gal
from oneeye.cloud.common import Result, rejected
from oneeye.cloud.dal import gallery_store, keys
from oneeye.cloud.dal.notify import publish_gallery_event
from oneeye.cloud.indexer_commands import (
    IndexerCommand,
    LearnCommand,
    RemoveTemplateCommand,
    ReviewCommand,
)
from oneeye.events import GalleryEvent
from oneeye.gallery.templates import DuplicatePair, TemplateSource, template_id
from oneeye.types import utc_now

if TYPE_CHECKING:
    from oneeye.cloud.functions.gallery_indexer import IndexerDeps

log = logging.getLogger(__name__)

def handle_command(command: IndexerCommand, deps: IndexerDeps) -> Result:
    """The result of a learning command (learn, remove_template or review)."""
    if isinstance(command, LearnCommand):
        return learn(command, deps)
    if isinstance(command, RemoveTemplateCommand):
        return remove_template(command, deps)
    if isinstance(command, ReviewCommand):
        return settle_review(command, deps)
    return rejected("gallery_indexer", f"not a learning command: {command.action}")


def stamped(g: gal.Gallery, deps: IndexerDeps) -> gal.Gallery:
    """``g`` with ``learning.enabled`` as the indexer's ``LEARN_WATCHLISTS`` says."""
    enabled = g.watchlist in deps.learn
    if g.learning.enabled == enabled:
        return g
    return replace(g, learning=replace(g.learning, enabled=enabled))


def publish(updated: gal.Gallery, change: str, person_id: str,
            deps: IndexerDeps) -> dict[str, Any]:
    """Write ``updated`` as the newest signed version and tell every edge; returns the
    ``latest.json`` written."""
    updated = stamped(updated, deps)
    latest = gallery_store.write_version(deps.bucket, updated, signing_key=deps.signing_key)
    event = GalleryEvent(watchlist=updated.watchlist, version=updated.version,  # type: ignore[arg-type]
                         bucket=deps.bucket.name, key=str(latest["key"]),
                         sha256=str(latest["sha256"]), published_at=utc_now(),
                         change=change, person_id=person_id,  # type: ignore[arg-type]
                         signature=latest.get("signature"))
    publish_gallery_event(event, deps.notify)
    return latest


def hold_for_review(deps: IndexerDeps, watchlist: str, person_id: str,
                    encoding: Any, source: TemplateSource, *, reason: str,
                    distance: float, message: str) -> dict[str, Any]:
    """Keep a template for a second look (``review/…``); returns the stored record."""
    enc = np.asarray(encoding, dtype=np.float32).reshape(-1)
    review_id = template_id(enc)
    record: dict[str, Any] = {
              "review_id": review_id, "watchlist": watchlist, "person_id": person_id,
              "kind": source.kind, "source": source.source, "by": source.by, "at": source.at,
              "reason": reason, "distance": round(distance, 4), "message": message,
              "held_at": utc_now(), "encoding": enc.tolist()}
    deps.bucket.put_json(keys.review(watchlist, person_id, review_id), record)
    log.warning("gallery_indexer: %s template of %s %s held for review: %s", source.kind,
                watchlist, person_id, message)
    return record


def learn(command: LearnCommand, deps: IndexerDeps) -> Result:
    wl, person = command.watchlist, command.person_id
    if wl not in deps.learn:
        return rejected("gallery_indexer", f"learning_off: {wl} does not learn from verdicts "
                        "(LEARN_WATCHLISTS)")
    current, _ = gallery_store.read_latest(deps.bucket, wl)
    base = {"watchlist": wl, "person_id": person, "event_id": command.event_id}
    if person not in current:
        return {"status": "absent", **base, "gallery_version": current.version}
    encoding = np.asarray(command.encoding, dtype=np.float32)
    negative = command.kind == "negative"
    source = TemplateSource("negative" if negative else "sighting", command.event_id,
                            command.by, command.at)
    if not negative:
        distance = current.distance_to(person, encoding)
        limit = current.learning.far_template_distance
        if distance > limit:
            held = hold_for_review(
                deps, wl, person, encoding, source, reason="far_template",
                distance=distance,
                message=f"confirmed sighting {command.event_id} is {distance:.2f} from "
                        f"{person}'s templates (over {limit:.2f}): held for a second look, "
                        "not learnt")
            return {"status": "needs_review", **base, "review_id": held["review_id"],
                    "reason": "far_template", "distance": round(distance, 4)}
    updated = current.with_template(person, encoding, source)
    if updated is current:
        return {"status": "duplicate", **base, "gallery_version": current.version}
    publish(updated, "added", person, deps)
    log.info("gallery_indexer: %s template from %s for %s %s (v%d)", source.kind,
             command.event_id, wl, person, updated.version)
    return {"status": "learnt", **base, "kind": source.kind,
            "template_id": template_id(encoding),
            "gallery_version": updated.version}


def remove_template(command: RemoveTemplateCommand, deps: IndexerDeps) -> Result:
    current, _ = gallery_store.read_latest(deps.bucket, command.watchlist)
    updated = current.without_template(command.person_id, command.template_id)
    base = {"watchlist": command.watchlist, "person_id": command.person_id,
            "template_id": command.template_id}
    if updated is current:
        return {"status": "absent", **base, "gallery_version": current.version}
    publish(updated, "removed", command.person_id, deps)
    log.info("gallery_indexer: template %s of %s removed by %s (v%d)", command.template_id,
             command.person_id, command.by, updated.version)
    return {"status": "removed", **base, "gallery_version": updated.version}


def settle_review(command: ReviewCommand, deps: IndexerDeps) -> Result:
    key = keys.review(command.watchlist, command.person_id, command.review_id)
    held = deps.bucket.get_json(key)
    base = {"watchlist": command.watchlist, "person_id": command.person_id,
            "review_id": command.review_id}
    if not isinstance(held, dict):
        return {"status": "absent", **base}
    if command.decision == "dismiss":
        deps.bucket.delete(key)
        return {"status": "dismissed", **base}
    current, _ = gallery_store.read_latest(deps.bucket, command.watchlist)
    source = TemplateSource(held.get("kind", "photo"), str(held.get("source", "")),
                            held.get("by") or command.by, held.get("at") or utc_now())
    updated = current.with_template(command.person_id,
                                    np.asarray(held["encoding"], np.float32), source)
    if updated is not current:
        publish(updated, "added", command.person_id, deps)
    deps.bucket.delete(key)
    return {"status": "accepted", **base, "gallery_version": updated.version}


def unlike_person(current: gal.Gallery, person_id: str, encoding: Any) -> float | None:
    """The distance of a new photo's encoding to ``person_id``'s templates when over
    ``photo_review_distance`` (it needs a second look), else None (no templates yet, or
    like them)."""
    distance = current.distance_to(person_id, encoding)
    if np.isfinite(distance) and distance > current.learning.photo_review_distance:
        return distance
    return None


def duplicates_of(g: gal.Gallery, person_id: str) -> list[DuplicatePair]:
    """The near-duplicate pairs (same face under two ids) that involve ``person_id``."""
    return [d for d in g.duplicates() if person_id in (d.person_a, d.person_b)]
