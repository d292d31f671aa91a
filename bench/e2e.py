"""End-to-end latency of the local stack: a face appears in the edge's video → the enriched
customer card arrives on a logged-in dashboard Socket.IO client. Target: p95 ≤ 1 s.

    .venv/bin/python bench/e2e.py [--duration 150] [--customers 6] [--strangers 2]

Starts ``oneeye up`` on free ports with the edge on a generated 'branch entrance' video
(real-time pacing, looping), logs in to the dashboard as the demo user and timestamps every
``desk_event`` on arrival. The moment a face appears is taken from the video's ground truth:
the edge stamps each match with the frame it decided on (``source_frame``) and the wall
clock (``observed_at``); with real-time pacing, appearance = observed_at − (source_frame −
first frame of that visit) / fps. Same machine, same clock.

Baseline, in the same run: synthetic ``oneeye.match/1`` events published straight to the
broker (no video, no face work) → card — the cloud path alone, so the split between edge
and cloud is visible. Prints figures; writes bench/results/e2e.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from oneeye.events import MatchEvent  # noqa: E402
from oneeye.local.demo import lfw_customers, make_demo_video  # noqa: E402
from oneeye.local.probe import DeskClient, wait_http  # noqa: E402
from oneeye.local.settings import LocalSettings  # noqa: E402
from oneeye.types import parse_time, utc_now  # noqa: E402

PASSWORD = "bench-demo-password"  # throwaway, this run only
TARGET_P95_S = 1.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ts(iso: str) -> float:
    return parse_time(iso).timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, values: list[float]) -> dict[str, Any]:
    if not values:
        print(f"  {name:<34} no samples")
        return {"n": 0}
    out = {"n": len(values), "p50_s": round(statistics.median(values), 3),
           "p95_s": round(pct(values, 0.95), 3), "max_s": round(max(values), 3)}
    print(f"  {name:<34} n={out['n']:<4} p50 {out['p50_s']:.3f} s   p95 {out['p95_s']:.3f} s"
          f"   max {out['max_s']:.3f} s")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=150, help="seconds of measuring")
    ap.add_argument("--warmup", type=float, default=30, help="seconds ignored after start "
                    "(the indexer is still enrolling the demo customers)")
    ap.add_argument("--customers", type=int, default=6)
    ap.add_argument("--strangers", type=int, default=2)
    ap.add_argument("--synthetic", type=int, default=20, help="baseline events")
    ap.add_argument("--mqtt-url", default=None, help="use this broker instead of the embedded")
    args = ap.parse_args()
    data_dir = LocalSettings().data_dir
    work = Path(tempfile.mkdtemp(prefix="oneeye-bench-e2e-"))
    demo_count = 12
    video = make_demo_video(work / "entrance.mp4", data_dir=data_dir, customers=args.customers,
                            strangers=args.strangers, demo_customer_count=demo_count)
    truth = json.loads(video.with_suffix(".truth.json").read_text())
    by_id = {c.id: person for person, c in lfw_customers(data_dir, demo_count).items()}
    first_frame = {v["person"]: v["first_frame"] for v in truth["visits"] if v["enrolled"]}
    fps, frames = float(truth["fps"]), int(truth["frames"])
    ports = {n: free_port() for n in ("mqtt", "moto", "http", "dashboard", "customer-api",
                                      "smtp")}
    argv = [sys.executable, "-m", "oneeye.cli", "up", "--var-dir", str(work / "var"),
            "--edge-source", str(video), "--duration", str(args.duration + args.warmup + 300)]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    if args.mqtt_url:
        argv += ["--mqtt-url", args.mqtt_url]
    env = {**os.environ, "ONEEYE_LOCAL__DEMO_PASSWORD": PASSWORD,
           "ONEEYE_LOCAL__DEMO_CUSTOMERS": str(demo_count),
           # every visit is its own announcement (the demo's 60 s cooldown would hide most)
           "ONEEYE_EDGE__COOLDOWN_S": "2",
           # the baseline publishes as its own thing: the registry must know it
           "ONEEYE_LOCAL__DEVICES": json.dumps(
               {"bench-dev": {"site_id": "site-1", "cameras": ["cam-b"]}})}
    log = (work / "up.log").open("wb")
    print(f"starting the local stack (log {work / 'up.log'}) …", flush=True)
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        dash = f"http://127.0.0.1:{ports['dashboard']}"
        if not wait_http(f"{dash}/healthz", 300, alive=lambda: proc.poll() is None):
            print("the dashboard never came up; see the log", file=sys.stderr)
            return 1
        desk = DeskClient(dash, "demo", PASSWORD).connect()
        t_start = time.time()
        print(f"measuring for {args.warmup:g} s warm-up + {args.duration:g} s …", flush=True)
        time.sleep(args.warmup + args.duration)
        video_lat, cloud_lat, wrong = [], [], 0
        edge_by_person: dict[str, list[float]] = {}
        for received, rec in list(desk.received):
            ev = rec["event"]
            match = ev.get("match") or {}
            if rec["kind"] != "customer_arrived" or match.get("source_frame") is None:
                continue
            if ts(match["observed_at"]) < t_start + args.warmup:
                continue
            person = by_id.get(match["person_id"])
            if person not in first_frame:
                wrong += 1  # someone announced who is not in this video
                continue
            src = int(match["source_frame"])
            appear = src - src % frames + first_frame[person]
            observed = ts(match["observed_at"])
            # make_demo_video writes a constant-rate file: index / fps is its media time
            appeared = observed - (src - appear) / fps
            video_lat.append(received - appeared)
            cloud_lat.append(received - observed)
            edge_by_person.setdefault(person, []).append(observed - appeared)
        baseline = synthetic_baseline(desk, ports["mqtt"], args.mqtt_url, args.synthetic)
        desk.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
    visits = args.duration / (frames / fps) * args.customers
    print(f"\nlocal stack end-to-end ({args.customers} customers + {args.strangers} strangers, "
          f"{frames / fps:.1f} s loop, ~{visits:.0f} customer visits measured):")
    results = {
        "face_in_video_to_card": summary("face appears → card on the desk", video_lat),
        "edge_face_to_event": summary("  of which edge (appear → event)",
                                      [x for lat in edge_by_person.values() for x in lat]),
        "edge_event_to_card": summary("  of which cloud (event → card)", cloud_lat),
        "baseline_mqtt_to_card": summary("baseline: MQTT publish → card", baseline),
        "wrong_person_cards": wrong, "target_p95_s": TARGET_P95_S,
    }
    # The p95 is usually one hard person (an enrolment photo far from how they look in
    # the video needs more frames for two agreeing votes), not the machinery: say who.
    print("  edge latency by person (median over their visits):")
    for person, lat in sorted(edge_by_person.items(), key=lambda kv: -pct(kv[1], 0.5)):
        print(f"    {person:<28} n={len(lat):<3} {pct(lat, 0.5):.2f} s")
    results["edge_by_person_p50_s"] = {p: pct(v, 0.5) for p, v in edge_by_person.items()}
    p95 = results["face_in_video_to_card"].get("p95_s")
    verdict = "no samples" if p95 is None else ("MET" if p95 <= TARGET_P95_S else "MISSED")
    print(f"  target p95 ≤ {TARGET_P95_S:.1f} s: {verdict}; wrong-person cards: {wrong}")
    out = REPO / "bench" / "results" / "e2e.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return 0 if verdict == "MET" else 1


def synthetic_baseline(desk: DeskClient, mqtt_port: int, mqtt_url: str | None,
                       count: int) -> list[float]:
    """The cloud path alone: publish a match on MQTT, wait for its card."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from oneeye.local.mqtt import parse_url

    host, port = parse_url(mqtt_url) if mqtt_url else ("127.0.0.1", mqtt_port)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-e2e")
    client.connect(host, port)
    client.loop_start()
    out = []
    try:
        for i in range(count):
            ev = MatchEvent(device_id="bench-dev", site_id="site-1", camera_id="cam-b",
                            observed_at=utc_now(), person_id=f"C-{1001 + i % 12}",
                            watchlist="customers", distance=0.4, margin=0.2, bbox=(1, 2, 3, 4),
                            track_id=i, frames_seen=3, gallery_version=1)
            sent = time.time()
            info = client.publish("oneeye/devices/bench-dev/matches", ev.to_json(), qos=1)
            info.wait_for_publish(5)
            rec = desk.wait_for(lambda r, eid=ev.event_id: r["event_id"] == eid, 20)
            if rec is None:
                continue
            received = next(t for t, r in desk.received if r["event_id"] == ev.event_id)
            out.append(received - sent)
            time.sleep(0.2)
    finally:
        client.loop_stop()
        client.disconnect()
    return out


if __name__ == "__main__":
    sys.exit(main())
