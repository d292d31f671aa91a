#!/usr/bin/env python3
"""Events per second of each event handler, in-process, against a moto server.

Not a test: prints figures. Target (issue 5): every handler >= 200 events/s with
the customer API excluded (enrich_match gets an in-process lookup).

Three tables:
1. against the moto server, one event at a time, next to a baseline measured in
   the same process — the bare boto3 calls a handler must make (conditional put +
   update + publish) — so the ratio is what OneEye's own code costs on top of the
   emulator (each emulated AWS call is a full HTTP request to a Python server);
2. the same with 8 threads, as Lambda runs concurrent invocations;
3. OneEye's own code alone (DynamoDB and SNS replaced by in-memory fakes): the
   handlers' ceiling once the AWS calls are fast, as they are in AWS (single-digit ms,
   and concurrent).

Usage: .venv/bin/python bench/handlers.py [--events 400] [--indexer-photos 5]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = 200.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rate(n: int, fn: Callable[[int], Any]) -> float:
    fn(-1)  # warm-up (clients, connections, imports)
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def rate_threads(n: int, fn: Callable[[int], Any], threads: int = 8) -> float:
    from concurrent.futures import ThreadPoolExecutor

    fn(-1)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, range(n)))
    return n / (time.perf_counter() - t0)


def print_rows(title: str, rows: list[tuple[str, float]], base: float | None) -> None:
    print(f"\n{title}")
    print(f"{'handler':42s} {'events/s':>9s} {'vs baseline':>11s}  target {TARGET:.0f}/s")
    for name, r in rows:
        verdict = "" if name.startswith("baseline") else ("ok" if r >= TARGET else "below")
        ratio = f"{r / base:10.2f}x" if base else f"{'':11s}"
        print(f"{name:42s} {r:9.0f} {ratio}  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--indexer-photos", type=int, default=5)
    args = parser.parse_args()

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                       "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_REGION": "us-east-1", "GALLERY_NOTIFY": "none"})
    logging.basicConfig(level=logging.ERROR)
    from oneeye import aws
    from oneeye.cloud import devices
    from oneeye.cloud.dal import store
    from oneeye.cloud.dal.resources import ensure_resources
    from oneeye.cloud.dal.state import Cooldowns, Idempotency
    from oneeye.cloud.functions import amber_alert, device_health, enrich_match, gallery_indexer
    from oneeye.ids import new_id
    from oneeye.types import utc_now

    env = ensure_resources("bench")
    os.environ.update(env)
    store.Cases(env["CASES_TABLE"]).upsert("MP-1", {"name": "Jane Doe", "status": "open"})
    snapshot = base64.b64encode(b"\xff\xd8" + os.urandom(6000) + b"\xff\xd9").decode()

    def match(watchlist: str, person: str, site: str = "s1", snap: str | None = None
              ) -> dict[str, Any]:
        m = {"schema": "oneeye.match/1", "event_id": new_id(), "device_id": f"d-{site}",
             "site_id": site, "camera_id": "c1", "observed_at": utc_now(), "person_id": person,
             "watchlist": watchlist, "distance": 0.3, "margin": 0.1, "bbox": [1, 2, 3, 0],
             "track_id": 1, "frames_seen": 2, "gallery_version": 1, "iot_thing": f"d-{site}"}
        if snap:
            m["snapshot_jpeg"] = snap
        return m

    def health() -> dict[str, Any]:
        return {"schema": "oneeye.health/1", "event_id": new_id(), "device_id": "d-s1",
                "site_id": "s1", "camera_id": "c1", "sent_at": utc_now(), "uptime_s": 1,
                "fps": 15, "iot_thing": "d-s1"}

    # Each bench site has its own thing "d-<site>"; the registry answers in-process (in AWS
    # DescribeThing answers are cached per container, so steady state is the same).
    registry = devices.Registry(describe=lambda thing: {"site_id": thing[2:], "cameras": "c1"})
    ddb, sns = aws.client("dynamodb"), aws.client("sns")
    enrich_deps = enrich_match.EnrichDeps(
        idempotency=Idempotency(env["IDEMPOTENCY_TABLE"]), desk_topic_arn=env["DESK_TOPIC_ARN"],
        lookup=lambda cid: {"id": cid, "name": "Ada", "segment": "x"}, registry=registry)
    amber_deps = dataclasses.replace(amber_alert.amber_from_env(), registry=registry)
    # every report records the device's state; a device_status goes out once per 300 s
    health_deps = dataclasses.replace(device_health.health_from_env(), registry=registry)
    n = args.events

    def floor(i: int) -> None:
        key = f"floor-{new_id()}"
        ddb.put_item(TableName=env["IDEMPOTENCY_TABLE"],
                     Item={"event_id": {"S": key}, "expires_at": {"N": "1"}},
                     ConditionExpression="attribute_not_exists(event_id)")
        ddb.update_item(TableName=env["IDEMPOTENCY_TABLE"], Key={"event_id": {"S": key}},
                        UpdateExpression="SET expires_at = :e",
                        ExpressionAttributeValues={":e": {"N": "2"}})
        sns.publish(TopicArn=env["DESK_TOPIC_ARN"], Message="{}")

    dup = match("customers", "C-1")
    # Measure the work, not a rejection: every timed event must really be handled.
    checks = [enrich_match.enrich_match(dup, enrich_deps),
              device_health.device_health(health(), health_deps),
              amber_alert.amber_alert(match("missing", "MP-1", site="s0"), amber_deps)]
    handled = [c["status"] for c in checks]
    if handled != ["published", "published", "alerted"]:
        sys.exit(f"bench: handlers did not process the sample events: {checks}")
    rows = [
        ("baseline: put+update+publish (boto3 only)", rate(n, floor)),
        ("enrich_match", rate(n, lambda i: enrich_match.enrich_match(
            match("customers", "C-1"), enrich_deps))),
        ("enrich_match duplicate", rate(n, lambda i: enrich_match.enrich_match(
            dup, enrich_deps))),
        ("device_health", rate(n, lambda i: device_health.device_health(health(), health_deps))),
        # Each sighting at a new site: the worst case, an alert + banner every time.
        ("amber_alert (alert + banner)", rate(n, lambda i: amber_alert.amber_alert(
            match("missing", "MP-1", site=f"s{i + 2}"), amber_deps))),
        ("amber_alert (cooldown, banner)", rate(n, lambda i: amber_alert.amber_alert(
            match("missing", "MP-1", site="s1"), amber_deps))),
        ("amber_alert (+ 6 KB snapshot)", rate(n, lambda i: amber_alert.amber_alert(
            match("missing", "MP-1", site="s1", snap=snapshot), amber_deps))),
        ("enrich_match rejected (bad)", rate(n, lambda i: enrich_match.enrich_match(
            {"schema": "oneeye.match/1"}, enrich_deps))),
    ]
    print_rows("1. against moto, serial", rows, rows[0][1])

    threaded = [
        ("baseline: put+update+publish (boto3 only)", rate_threads(n, floor)),
        ("enrich_match", rate_threads(n, lambda i: enrich_match.enrich_match(
            match("customers", "C-1"), enrich_deps))),
        ("device_health", rate_threads(n, lambda i: device_health.device_health(
            health(), health_deps))),
        ("amber_alert (alert + banner)", rate_threads(n, lambda i: amber_alert.amber_alert(
            match("missing", "MP-1", site=f"t{i + 2}"), amber_deps))),
    ]
    print_rows("2. against moto, 8 threads", threaded, threaded[0][1])

    class MemIdempotency(Idempotency):
        def __init__(self) -> None:
            super().__init__("mem")
            self.keys: dict[str, float] = {}

        def claim(self, key: str, *, lease_s: int = 300, now: float | None = None,
                  kind: str = "event") -> bool:
            t = time.time()
            if self.keys.get(key, 0) > t:
                return False
            self.keys[key] = t + lease_s
            return True

        def complete(self, key: str, *, retention_s: int = 0, now: float | None = None) -> None:
            self.keys[key] = time.time() + 3600

        def release(self, key: str) -> None:
            self.keys.pop(key, None)

    class MemCooldowns(Cooldowns):
        def __init__(self) -> None:
            super().__init__("mem")
            self.until: dict[tuple[str, ...], float] = {}

        def start(self, *parts: str, seconds: int) -> bool:
            t = time.time()
            if self.until.get(parts, 0) > t:
                return False
            self.until[parts] = t + seconds
            return True

        def cancel(self, *parts: str) -> None:
            self.until.pop(parts, None)

    class MemCases(store.Cases):
        def get(self, case_id: str) -> dict[str, Any] | None:
            return {"case_id": case_id, "name": "Jane Doe", "status": "open"}

    class MemBucket(store.Bucket):
        def put(self, key: str, data: bytes, **kw: Any) -> None:
            pass

        def presign_get(self, key: str, *, expires_s: int) -> str:
            return f"https://example.invalid/{key}?X-Amz-Expires={expires_s}"

    real_publish = store.publish
    store.publish = lambda *a, **k: new_id()  # type: ignore[assignment]
    mem_desk = enrich_match.EnrichDeps(idempotency=MemIdempotency(), desk_topic_arn="arn:desk",
                                       lookup=enrich_deps.lookup, registry=registry)
    mem_amber = amber_alert.AmberDeps(idempotency=MemIdempotency(), cooldowns=MemCooldowns(),
                                      cases=MemCases("mem"), bucket=MemBucket("mem"),
                                      alerts_topic_arn="arn:alerts", desk_topic_arn="arn:desk",
                                      registry=registry)
    own = [
        ("enrich_match", rate(n * 5, lambda i: enrich_match.enrich_match(
            match("customers", "C-1"), mem_desk))),
        # device_health has no in-memory fake: its work is the device item's DynamoDB writes.
        ("amber_alert (alert + banner)", rate(n * 5, lambda i: amber_alert.amber_alert(
            match("missing", "MP-1", site=f"m{i + 2}"), mem_amber))),
        ("amber_alert (+ 6 KB snapshot)", rate(n * 5, lambda i: amber_alert.amber_alert(
            match("missing", "MP-1", site=f"n{i + 2}", snap=snapshot), mem_amber))),
    ]
    store.publish = real_publish  # type: ignore[assignment]
    print_rows("3. OneEye code alone (in-memory DynamoDB/SNS/S3 fakes)", own, None)
    print()

    if args.indexer_photos:
        photo = (REPO.parent / "shared" / "data" / "ageitgey_face_recognition" / "examples"
                 / "obama_small.jpg").read_bytes()
        s3 = aws.client("s3")
        deps = gallery_indexer.indexer_from_env()

        def index(i: int) -> None:
            key = f"uploads/customers/C-{i + 10}/1.jpg"
            s3.put_object(Bucket=env["ONEEYE_BUCKET"], Key=key, Body=photo)
            etag = s3.head_object(Bucket=env["ONEEYE_BUCKET"], Key=key)["ETag"].strip('"')
            assert gallery_indexer.index_upload(key, etag, deps)["status"] == "accepted"

        r = rate(args.indexer_photos, index)
        print(f"{'gallery_indexer (320x240 photo, dlib)':42s} {r:9.1f}   photos/s "
              "(upload-bound; not under the 200/s target)")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
