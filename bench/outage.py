"""Outage bench: really stop the broker, really kill -9 the edge, count what arrives.

    .venv/bin/python bench/outage.py                       # amqtt broker, 60 s outage
    .venv/bin/python bench/outage.py --broker mosquitto --outage-s 10
    .venv/bin/python bench/outage.py --broker amqtt --outage-s 10 \
        --video ../shared/data/ageitgey_face_recognition/examples/short_hamilton_clip.mp4

Every part runs as its own process where the target says "process": the broker
(embedded amqtt via ``python -m oneeye.local.broker``, or a private ``mosquitto``),
the edge (this script's ``child`` mode: an :class:`Uplink` fed synthetic
``oneeye.match/1`` events at a fixed rate, printing each event id once
``submit()`` has returned — the point from which the event is promised), and a
paho subscriber with a persistent session that plays the cloud.

Scenarios and targets (issue 4):
1. broker down for ``--outage-s`` (60 s) mid-stream → 0 lost, 0 duplicates after dedupe;
2. ``kill -9`` of the edge while publishing, then restart → 0 lost;
3. gallery update → swap on a running edge (moto S3 + MQTT message) → ≤ 5 s;
4. with ``--video``: the real edge pipeline on a video with the broker stopped for a
   while mid-run → every event in its JSONL file reaches the subscriber.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from oneeye.local.broker import MosquittoBroker, spawn_embedded  # noqa: E402
from tests.net_support import TcpProxy, free_port  # noqa: E402

# --------------------------------------------------------------------------- child edge


def child(args: argparse.Namespace) -> int:
    """A synthetic edge: Uplink + outbox, ``--count`` events at ``--rate``/s."""
    import logging

    from oneeye.edge.comms.uplink import Uplink
    from oneeye.edge.device.runner import vitals_of
    from oneeye.edge.gallery.holder import GalleryHolder
    from oneeye.edge.settings import EdgeSettings
    from oneeye.events import MatchEvent
    from oneeye.types import utc_now

    logging.basicConfig(level=os.environ.get("ONEEYE_LOG", "WARNING"),
                        format="child %(levelname)s %(name)s: %(message)s")
    settings = EdgeSettings.model_validate({
        "device_id": args.device_id,
        "publish": {"url": args.url, "reconnect_max_s": 2, "timeout_s": 5},
        "outbox": {"path": args.outbox, "max_events": args.max_events},
        "health": {"interval_s": 3600},
    })
    uplink = Uplink(settings, lambda: vitals_of([], GalleryHolder(), None)).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    t0 = time.monotonic()
    for i in range(args.count):
        if stop.is_set():
            break
        ev = MatchEvent(device_id=args.device_id, site_id="site-1", camera_id="cam-1",
                        observed_at=utc_now(), person_id=f"C-{1000 + i % 13}",
                        watchlist="customers", distance=0.3, margin=0.1, bbox=(1, 2, 3, 4),
                        track_id=args.start + i, frames_seen=3, gallery_version=1)
        uplink.submit(ev)
        print(f"SUBMITTED {ev.event_id}", flush=True)
        delay = t0 + (i + 1) * period - time.monotonic()
        if delay > 0:
            stop.wait(delay)
    print("DONE", flush=True)
    deadline = time.monotonic() + args.drain_s
    while uplink.outbox.depth() and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    print(f"DRAINED depth={uplink.outbox.depth()}", flush=True)
    uplink.close(timeout=2)
    return 0


def spawn_child(url: str, outbox: Path, count: int, rate: float, *, start: int = 0,
                drain_s: float = 120, device_id: str = "edge-bench") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "child", "--url", url, "--outbox",
         str(outbox), "--count", str(count), "--rate", str(rate), "--start", str(start),
         "--drain-s", str(drain_s), "--device-id", device_id],
        stdout=subprocess.PIPE, text=True, bufsize=1)


class ChildReader:
    """Collects a child's SUBMITTED ids on a thread (the promised events)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.submitted: list[str] = []
        self.lines: list[str] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.strip())
                if line.startswith("SUBMITTED "):
                    self.submitted.append(line.split()[1])
                self.cond.notify_all()

    def wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
        return True


# --------------------------------------------------------------------------- broker + cloud


class Broker:
    """The broker as a process that can be stopped and started again on the same port."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self._mosq = MosquittoBroker(self.port, state_dir=workdir / "mosq") \
            if kind == "mosquitto" else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._mosq is not None:
            self._mosq.start()
        else:
            self._proc = spawn_embedded(self.port)

    def stop(self) -> None:
        if self._mosq is not None:
            self._mosq.stop()
        elif self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None

    def close(self) -> None:
        self.stop()
        if self._mosq is not None:
            self._mosq.cleanup()


class Cloud:
    """A subscriber with a persistent session: counts and dedupes match events."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho

        self.received: list[str] = []
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"bench-cloud-{port}", clean_session=False)
        self.client.on_connect = lambda c, *a: c.subscribe("oneeye/#", qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_disconnect = lambda *a: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        self.subscribed.wait(10)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if not msg.topic.endswith("/matches"):
            return
        with self.cond:
            self.received.append(json.loads(msg.payload)["event_id"])
            self.cond.notify_all()

    def wait_all(self, ids: list[str], timeout: float) -> bool:
        want = set(ids)
        deadline = time.monotonic() + timeout
        with self.cond:
            while not want <= set(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
        return True

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def report(name: str, promised: list[str], received: list[str], **extra: Any) -> dict[str, Any]:
    got = set(received)
    order = {e: i for i, e in enumerate(promised)}
    lost = [e for e in promised if e not in got]
    mine = [e for e in received if e in set(promised)]
    first_seen: list[str] = []
    seen: set[str] = set()
    for e in mine:
        if e not in seen:
            seen.add(e)
            first_seen.append(e)
    out_of_order = sum(1 for a, b in itertools.pairwise(first_seen)
                       if order[a] > order[b])
    row = {"scenario": name, "promised": len(promised), "delivered_unique": len(seen),
           "lost": len(lost), "lost_positions": [order[e] for e in lost][:10],
           "redelivered_raw": len(mine) - len(seen),
           "duplicates_after_dedupe": len(first_seen) - len(set(first_seen)),
           "out_of_order": out_of_order, **extra}
    print(json.dumps(row), flush=True)
    return row


# --------------------------------------------------------------------------- scenarios


def scenario_outage(kind: str, work: Path, outage_s: float, count: int, rate: float) -> dict[
        str, Any]:
    broker = Broker(kind, work / "outage")
    broker.start()
    cloud = Cloud(broker.port)
    # amqtt keeps no sessions across a restart: the edge goes through a proxy that is
    # reopened only once the subscriber is back, or its first replayed events would reach
    # a broker with nobody subscribed (Mosquitto runs with persistence and needs none).
    proxy = TcpProxy(broker.port, free_port()).start() if kind == "amqtt" else None
    proc = spawn_child(proxy.url if proxy else broker.url, work / "outage.sqlite3", count, rate)
    reader = ChildReader(proc)
    try:
        reader.wait(lambda r: len(r.submitted) >= count // 3, 60)
        print(f"[{kind}] stopping the broker for {outage_s:.0f} s after "
              f"{len(reader.submitted)} events", flush=True)
        t_stop = time.monotonic()
        if proxy:
            proxy.stop()
        broker.stop()
        time.sleep(outage_s)
        broker.start()
        if proxy:
            cloud.subscribed.wait(30)
            proxy.start()
        t_up = time.monotonic()
        backlog = list(reader.submitted)
        print(f"[{kind}] broker back after {t_up - t_stop:.1f} s; {len(backlog)} events "
              "promised so far", flush=True)
        cloud.wait_all(backlog, 120)
        recovery = time.monotonic() - t_up
        reader.wait(lambda r: "DONE" in r.lines, count / max(rate, 1) + 120)
        ok = cloud.wait_all(reader.submitted, 120)
        return report(f"broker down {outage_s:.0f}s ({kind})", reader.submitted,
                      cloud.received, all_delivered=ok,
                      backlog_delivered_s_after_broker_back=round(recovery, 1))
    finally:
        proc.terminate()
        proc.wait(30)
        cloud.close()
        if proxy:
            proxy.stop()
        broker.close()


def scenario_kill9(kind: str, work: Path, count: int, rate: float) -> dict[str, Any]:
    broker = Broker(kind, work / "kill")
    broker.start()
    cloud = Cloud(broker.port)
    outbox = work / "kill.sqlite3"
    try:
        first = ChildReader(spawn_child(broker.url, outbox, count, rate))
        first.wait(lambda r: len(r.submitted) >= count // 2, 60)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        promised = list(first.submitted)
        print(f"[{kind}] kill -9 after {len(promised)} promised events; "
              f"{len(set(cloud.received) & set(promised))} had arrived", flush=True)
        t_restart = time.monotonic()
        second = ChildReader(spawn_child(broker.url, outbox, 0, rate))
        ok = cloud.wait_all(promised, 60)
        replay_s = time.monotonic() - t_restart
        second.wait(lambda r: any(x.startswith("DRAINED") for x in r.lines), 30)
        second.proc.wait(30)
        return report(f"kill -9 of the edge ({kind})", promised, cloud.received,
                      all_delivered=ok, replay_done_s_after_restart=round(replay_s, 2))
    finally:
        cloud.close()
        broker.close()


def scenario_gallery(work: Path, rounds: int) -> dict[str, Any]:
    """Gallery update message → new gallery in use on a running edge (in-process Uplink)."""
    import numpy as np
    from moto.server import ThreadedMotoServer

    from oneeye import aws
    from oneeye import gallery as G
    from oneeye.edge.comms.publishers import make_publisher
    from oneeye.edge.comms.uplink import Uplink
    from oneeye.edge.device.runner import start_gallery_sync, vitals_of
    from oneeye.edge.gallery.holder import GalleryHolder
    from oneeye.edge.settings import EdgeSettings
    from oneeye.events import GalleryEvent
    from oneeye.local.broker import EmbeddedBroker
    from oneeye.types import utc_now

    moto_port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}",
                      AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    aws.clear_cache()
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="oneeye-bench")
    broker = EmbeddedBroker(free_port()).start()
    settings = EdgeSettings.model_validate({
        "device_id": "edge-bench", "watchlists": ["missing"],
        "publish": {"url": broker.url},
        "outbox": {"path": str(work / "gallery-outbox.sqlite3")},
        "gallery_sync": {"enabled": True, "bucket": "oneeye-bench", "poll_interval_s": 3600,
                         "cache_dir": str(work / "galleries")},
        "health": {"interval_s": 3600}})
    holder = GalleryHolder()
    uplink = Uplink(settings, lambda: vitals_of([], holder, sync),
                    publisher=make_publisher(settings)).start()
    sync = start_gallery_sync(settings, holder, uplink)
    import paho.mqtt.client as paho

    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-indexer")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    uplink.publisher.wait_connected(10)
    time.sleep(0.5)
    rng = np.random.default_rng(7)
    latencies = []
    for v in range(1, rounds + 1):
        g = G.Gallery.from_entries("missing", [(f"MP-{i}", rng.normal(0, 0.1, 128))
                                               for i in range(200 * v)], version=v)
        data = G.to_bytes(g)
        key = f"gallery/missing/{v}.npz"
        s3.put_object(Bucket="oneeye-bench", Key=key, Body=data)
        msg = GalleryEvent(watchlist="missing", version=v, bucket="oneeye-bench", key=key,
                           sha256=G.manifest_for(g, data, filename=f"{v}.npz")["sha256"],
                           published_at=utc_now())
        t0 = time.monotonic()
        pub.publish("oneeye/gallery/updated", msg.to_json(), qos=1)
        while holder.current().versions().get("missing") != v:
            if time.monotonic() - t0 > 30:
                break
            time.sleep(0.005)
        latencies.append(time.monotonic() - t0)
    pub.loop_stop()
    uplink.close()
    if sync is not None:
        sync.stop()
    broker.stop()
    server.stop()
    row = {"scenario": "gallery update -> swap", "rounds": rounds,
           "median_s": round(statistics.median(latencies), 3),
           "max_s": round(max(latencies), 3), "target_s": 5.0,
           "met": max(latencies) <= 5.0}
    print(json.dumps(row), flush=True)
    return row


def scenario_video(kind: str, work: Path, video: Path, gallery: Path | None) -> dict[str, Any]:
    """The real edge (``oneeye edge``) on a video while the broker is down, then again
    once it is back: the first run's events wait in the outbox and arrive with the second's."""
    broker = Broker(kind, work / "video")
    broker.start()
    cloud = Cloud(broker.port)
    events = work / "video-events.jsonl"
    cmd = [sys.executable, "-m", "oneeye.cli", "edge", "--source", str(video),
           "--publish", broker.url, "--events-out", str(events)]
    if gallery is not None:
        cmd += ["--gallery", str(gallery)]
    env = {**os.environ, "ONEEYE_EDGE__OUTBOX__PATH": str(work / "video-outbox.sqlite3")}
    try:
        broker.stop()
        print(f"[{kind}] broker down; real edge runs on {video.name}", flush=True)
        first = subprocess.run(cmd, env=env, timeout=600)
        offline = len(events.read_text().splitlines()) if events.exists() else 0
        broker.start()
        cloud.subscribed.wait(30)
        print(f"[{kind}] broker back; {offline} event(s) from the offline run; edge again",
              flush=True)
        second = subprocess.run(cmd, env=env, timeout=600)
        promised = [json.loads(x)["event_id"] for x in events.read_text().splitlines()
                    if x.strip()] if events.exists() else []
        ok = cloud.wait_all(promised, 60)
        return report(f"real edge on {video.name}, broker down then back ({kind})", promised,
                      cloud.received, all_delivered=ok, offline_events=offline,
                      exit_codes=[first.returncode, second.returncode])
    finally:
        cloud.close()
        broker.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("child", help="(internal) a synthetic edge process")
    c.add_argument("--url", required=True)
    c.add_argument("--outbox", required=True)
    c.add_argument("--count", type=int, default=100)
    c.add_argument("--rate", type=float, default=20)
    c.add_argument("--start", type=int, default=0)
    c.add_argument("--drain-s", type=float, default=120)
    c.add_argument("--device-id", default="edge-bench")
    c.add_argument("--max-events", type=int, default=100_000)
    ap.add_argument("--broker", choices=["amqtt", "mosquitto", "both"], default="both")
    ap.add_argument("--outage-s", type=float, default=60)
    ap.add_argument("--events", type=int, default=600)
    ap.add_argument("--rate", type=float, default=5, help="events per second from the edge")
    ap.add_argument("--gallery-rounds", type=int, default=5)
    ap.add_argument("--video", type=Path)
    ap.add_argument("--gallery", type=Path, help="gallery .npz for --video")
    ap.add_argument("--out", type=Path, help="append result rows (JSON lines) here")
    args = ap.parse_args(argv)
    if args.cmd == "child":
        return child(args)
    if args.broker != "amqtt" and not Path("/usr/sbin/mosquitto").exists():
        print("mosquitto not installed: use --broker amqtt", file=sys.stderr)
        return 2
    kinds = ["amqtt", "mosquitto"] if args.broker == "both" else [args.broker]
    rows = []
    with tempfile.TemporaryDirectory(prefix="oneeye-outage-") as tmp:
        work = Path(tmp)
        for kind in kinds:
            # Enough events that the stream is still running when the broker comes back.
            count = max(args.events, int(args.rate * (args.outage_s + 10)))
            rows.append(scenario_outage(kind, work / kind, args.outage_s, count, args.rate))
            rows.append(scenario_kill9(kind, work / kind, max(200, args.events // 2), 50))
        rows.append(scenario_gallery(work, args.gallery_rounds))
        if args.video:
            rows.append(scenario_video(kinds[-1], work, args.video, args.gallery))
    if args.out:
        with args.out.open("a") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
    failed = [r for r in rows if r.get("lost") or r.get("met") is False
              or r.get("all_delivered") is False]
    print(f"{len(rows) - len(failed)}/{len(rows)} scenarios met their target", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
