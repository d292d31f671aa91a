"""Shared builders for the tests of learning from desk verdicts: a real face's encoding,
a sighting as the cloud delivers it to the desk, and the edge's track decision on a look."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from oneeye import aws, faces
from oneeye.edge.detect.pipeline import Look, TrackLooks, decide_track
from oneeye.edge.settings import RecognitionSettings
from oneeye.events import DeskEvent, MatchEvent
from oneeye.gallery import Match, Matcher, fuse
from oneeye.types import format_time


def encode(path: Path) -> NDArray[np.float32]:
    """The encoding of the one face in the photo at ``path``."""
    image = faces.load_image(path)
    (enc,) = faces.encode(image, faces.detect(image))
    return np.asarray(enc, dtype=np.float32)


def sighting(person_id: str, encoding: list[float] | None, *, name: str = "Barack Obama",
             site_id: str = "branch-1", camera: str = "cam-door-1",
             snapshot_url: str | None = None, seconds_ago: float = 0.0) -> DeskEvent:
    """A customer arrival as ``enrich_match`` makes it: the desk event's id is the match's
    (the id a learnt template names as its source), the match carries the edge's fused
    ``encoding`` (sent only for a watchlist that learns), ``snapshot_url`` the camera crop;
    observed ``seconds_ago``."""
    observed = format_time(datetime.now(UTC) - timedelta(seconds=seconds_ago))
    match = MatchEvent(device_id=camera, site_id=site_id, camera_id=camera,
                       observed_at=observed, person_id=person_id, watchlist="customers",
                       distance=0.38, margin=0.2, bbox=(10, 110, 110, 10), track_id=1,
                       frames_seen=3, gallery_version=1, encoding=encoding)
    return DeskEvent(event_id=match.event_id, kind="customer_arrived", site_id=site_id,
                     observed_at=match.observed_at, device_id=camera, match=match,
                     customer={"id": person_id, "name": name, "photo_url": snapshot_url},
                     snapshot_url=snapshot_url)


def edge_decides(matcher: Matcher, look: NDArray[np.float32]) -> tuple[Match | None, list[float]]:
    """A track whose every look is ``look``, decided as the device decides
    (:func:`decide_track` with the device's default recognition settings) until it is
    decided or gives up: the accepted match (None: no event, so no card) and the fused
    encoding the event would carry."""
    r = RecognitionSettings()
    st = TrackLooks()
    match: Match | None = None
    while not st.decided:
        st.encodes += 1
        match, _ = decide_track(st, Look(look, (10, 110, 110, 10), 100, None), matcher, r, {})
    fused = fuse(np.stack([lk.encoding for lk in st.looks]))
    return match, [round(float(v), 5) for v in fused]


def take_queued(queue_url: str) -> list[dict[str, Any]]:
    """Every command waiting on the indexer queue (S3's setup test event left out), taken
    off as the indexer would."""
    sqs, out = aws.client("sqs"), []
    while msgs := sqs.receive_message(QueueUrl=queue_url,
                                      MaxNumberOfMessages=10).get("Messages", []):
        for m in msgs:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            body = json.loads(m["Body"])
            if body.get("Event") != "s3:TestEvent":
                out.append(body)
    return out
