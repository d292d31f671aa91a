"""Edge pipeline bench: OneEye's pipeline next to the naive prototype loop, same process.

Run:  .venv/bin/python bench/edge.py [--visits 20] [--strangers 6] [--naive-frames 300]
      [--looks 3] [--sections classic,range,idle]

Two clips:
* ``short_hamilton_clip.mp4`` (640x360, 275 frames) with a gallery built from
  ``lin-manuel-miranda.png``. Appearance reference: the first frame in which the naive
  loop (full-frame HOG upsample 1) names him — a usable face is on screen from there.
* a generated 640x480 "branch entrance" video (``oneeye.synth``): enrolled lfw_dev
  people shown with a *probe* photo (not their enrolment photo), strangers from
  ``impostors/``, a gap between visits. Ground truth gives each visit's frames.
  It runs twice, the two ends of what a camera sees: one photo per visit (a still face
  moving: a track's looks differ only by noise, so a photo the rule rejects in every
  frame is never accepted), and ``--looks`` of the person's probe photos in turn
  (photos from different days: looks that differ far more than a visitor turning does).

Both galleries are padded to 10,000 identities with random encodings (norms like
dlib's), so matching cost and resident memory are those of a 10k-person branch.

The naive loop is the original prototype: full-frame HOG (upsample 1) every frame,
encode every face, closest gallery encoding under 0.6, publish every match of every
frame. It is slow, so on the entrance video it runs on the first ``--naive-frames``
frames only (its fps is per frame; its events per visit count visits it saw completely).

Latency is media time from a visit's first visible frame to its event's
``source_frame``. A wrong-person event names someone not visible at that frame.

Two more sections (issue 11 §5):

* (a) ``range``: a generated 1920x1080 video at 15 fps where lfw_dev faces (probe
  photos of enrolled people, and impostors) walk slowly across the frame, four at a
  time, at face widths from 24 to 128 px (the HOG box width). Per size it prints
  detection recall (a track was on the face), recognition recall (the right event)
  and wrong-person / stranger events for the current path (native resolution,
  regions) and for the previous full-frame path (frames downscaled to 1280 wide,
  HOG on the whole frame at scale 0.75, faces encoded from 40 px), same run.
* (c) ``idle``: CPU per frame of an empty 1080p scene (camera noise only) through
  the pipeline vs decoding alone, same video, same run.

``--multicam`` (issues 11 §5b, 23 §1) instead runs N copies of a generated 1920x1080
entrance video at real time (15 fps) as N cameras of ONE edge process (``run_edge``: one
gallery, one detection scheduler, one encoding pool), for each N of ``--cameras``
(default 1,2,4,8). Visitors walk towards the camera with face boxes growing from
``--mc-min-face`` to ``--mc-max-face`` px (32–160), ``--mc-visits`` enrolled visits per
camera (48: one visit is ~2 points of recall, so 5 points are not noise). It prints per
camera: visit recall, p95 appearance→event latency (media time, = wall time at real
time), p95 frame age, dropped frames, detection passes by need; per N: the CPU-ms per
camera-second of each stage (decode, motion, region detection, track, landmarks, encode,
match, publish: thread CPU time, worker threads included), the process's CPU per camera
and the peak RSS (total, and above the pre-run baseline per camera). The N=1 run is the
baseline of the same run.

    .venv/bin/python bench/edge.py --multicam [--cameras 1,2,4,8] [--mc-visits 48]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import CACHE_DIR, enrol_photos, read_dataset  # noqa: E402
from oneeye import faces, media, synth  # noqa: E402
from oneeye.edge.camera.sources import FileSource  # noqa: E402
from oneeye.edge.detect.metrics import STAGES  # noqa: E402
from oneeye.edge.detect.pipeline import Pipeline  # noqa: E402
from oneeye.edge.device.runner import run_edge  # noqa: E402
from oneeye.edge.gallery.holder import GalleryHolder  # noqa: E402
from oneeye.edge.settings import EdgeSettings  # noqa: E402
from oneeye.events import MatchEvent  # noqa: E402
from oneeye.gallery import (  # noqa: E402
    EnrolmentPolicy,
    Gallery,
    Matcher,
    encode_enrolment_photo,
    load,
    save,
)
from oneeye.types import BBox  # noqa: E402

DATA = REPO.parent / "shared" / "data"
HAMILTON = DATA / "ageitgey_face_recognition" / "examples" / "short_hamilton_clip.mp4"
MIRANDA = DATA / "ageitgey_face_recognition" / "examples" / "lin-manuel-miranda.png"
LFW = DATA / "lfw_dev"
PAD_TO = 10_000


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size in MB."""
    vals = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            vals[line.split(":")[0]] = int(line.split()[1]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def padded(watchlist: str, entries: list[tuple[str, np.ndarray]], seed: int = 7) -> Gallery:
    rng = np.random.default_rng(seed)
    n = max(0, PAD_TO - len({p for p, _ in entries}))
    # dlib encodings have norms 1.25–1.56 and small per-dimension spread: mimic that.
    pad = rng.normal(0, 0.12, (n, 128)).astype(np.float32)
    ids = [f"PAD-{i:05d}" for i in range(n)]
    return Gallery.from_entries(watchlist, [*entries, *zip(ids, pad, strict=True)])


def run_pipeline(video: Path, gallery: Gallery
                 ) -> tuple[list[MatchEvent], float, int, Any, float]:
    events: list[MatchEvent] = []
    settings = EdgeSettings.model_validate({"cameras": {"cam-1": {"source": str(video)}}})
    pipe = Pipeline(settings, settings.camera("cam-1"), GalleryHolder(Matcher([gallery])),
                    sinks=[events.append])
    src = FileSource(video)
    t0, c0 = time.perf_counter(), time.process_time()
    metrics = pipe.run(src)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return events, metrics.frames / wall, metrics.frames, metrics, 1000 * cpu / metrics.frames


def run_naive(video: Path, known: list[tuple[str, np.ndarray]], max_frames: int | None,
              ruled: Gallery | None = None
              ) -> tuple[list[tuple[int, str]], float, int, int | None, float]:
    """The prototype loop. Also returns the first frame at which OneEye's rule (``ruled``)
    would accept a face in a full-resolution still analysis — the fair appearance reference."""
    import cv2

    names = [p for p, _ in known]
    enc = np.array([e for _, e in known], dtype=np.float64)
    cap = cv2.VideoCapture(str(video))
    events: list[tuple[int, str]] = []
    encs: list[tuple[int, np.ndarray]] = []
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while max_frames is None or n < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        rgb = faces.bgr_to_rgb(frame)
        boxes = faces.detect(rgb, upsample=1)
        for e in faces.encode(rgb, boxes):
            encs.append((n, e))
            d = faces.face_distance(enc, e)
            i = int(np.argmin(d))
            if d[i] <= 0.6:
                events.append((n, names[i]))   # "publish" every match of every frame
        n += 1
    fps = n / (time.perf_counter() - t0)
    cpu_ms = 1000 * (time.process_time() - c0) / max(1, n)
    cap.release()
    first_ok = None
    if ruled is not None:   # outside the timed loop
        first_ok = next((i for i, e in encs if ruled.match(e) is not None), None)
    return events, fps, n, first_ok, cpu_ms


def visit_frames(video: Path, truth: synth.GroundTruth) -> dict[int, np.ndarray]:
    """The BGR frames at 1/4, 1/2 and 3/4 of each visit, by frame index."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames: dict[int, np.ndarray] = {}
    wanted = {v.first_frame + (v.last_frame - v.first_frame) * k // 4
              for v in truth.visits for k in (1, 2, 3)}
    i = 0
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if i in wanted:
            frames[i] = f
        i += 1
    cap.release()
    return frames


def recognisable(video: Path, truth: synth.GroundTruth, gallery: Gallery) -> list[bool]:
    """Per visit: does a full-resolution still analysis (HOG upsample 1) of the visit's
    frames at 1/4, 1/2 and 3/4 accept the right person under the gallery's rule?"""
    frames = {i: faces.bgr_to_rgb(f) for i, f in visit_frames(video, truth).items()}
    out = []
    for v in truth.visits:
        hit = False
        for k in (1, 2, 3):
            rgb = frames[v.first_frame + (v.last_frame - v.first_frame) * k // 4]
            for e in faces.encode(rgb, faces.detect(rgb, upsample=1)):
                m = gallery.match(e)
                hit = hit or (m is not None and m.person_id == v.person)
        out.append(hit)
    return out


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def score(events: list[tuple[int, str]], truth: synth.GroundTruth, upto: int | None,
          slack: int, usable: list[bool] | None = None) -> dict[str, Any]:
    visits = [v for v in truth.visits if upto is None or v.last_frame < upto]
    per_visit = {i: 0 for i in range(len(visits))}
    latencies: list[float] = []
    wrong = 0
    for frame, person in events:
        hit = [i for i, v in enumerate(visits)
               if v.person == person and v.first_frame <= frame <= v.last_frame + slack]
        if not hit:
            if upto is None or frame < upto:
                wrong += 1
            continue
        i = hit[0]
        if per_visit[i] == 0:
            # synth writes its videos at the constant truth.fps: index / fps is exact there
            latencies.append((frame - visits[i].first_frame) / truth.fps)
        per_visit[i] += 1
    enrolled = [i for i, v in enumerate(visits) if v.enrolled]
    found = [i for i in enrolled if per_visit[i] > 0]
    rec = [i for i in enrolled if usable is None or usable[i]]
    return {
        "recall_recognisable": round(sum(per_visit[i] > 0 for i in rec) / len(rec), 3)
        if rec else None,
        "recognisable_visits": len(rec),
        "visits": len(visits), "enrolled_visits": len(enrolled), "events": len(events),
        "recall": round(len(found) / len(enrolled), 3) if enrolled else None,
        "events_per_visit": [per_visit[i] for i in enrolled],
        "stranger_events": sum(per_visit[i] for i in per_visit if not visits[i].enrolled),
        "wrong_person_events": wrong,
        "latency_s_median": pct(latencies, 50), "latency_s_p95": pct(latencies, 95),
    }


# --------------------------------------------------------------------------- (a) range, (c) idle

RANGE_SIZES = (24, 28, 32, 36, 40, 48, 64, 96, 128)
RANGE_FPS = 15.0
#: The path before issue 11: whole frame downscaled to 1280 wide and by 0.75, faces from 40 px.
FULL_FRAME_PATH: dict[str, Any] = {"detection": {"regions": False, "max_width": 1280,
                                                 "scale": 0.75},
                                   "recognition": {"min_face_px": 40}}


#: Regions searched by BlazeFace full range, each proposal confirmed by HOG (issue 23 §3).
BLAZEFACE_PATH: dict[str, Any] = {"detection": {"proposer": "blazeface",
                                                "blazeface_model": "full"}}


def make_range_video(path: Path, people: list[tuple[str, Path, bool]], sizes: tuple[int, ...],
                     seed: int = 5) -> list[dict[str, Any]]:
    """Write the (a) video; returns the appearances: person, enrolled, size, frames, track."""
    import cv2

    width, height, per_segment = 1920, 1080, 4
    seg_frames, gap_frames = round(1.6 * RANGE_FPS), round(0.6 * RANGE_FPS)
    rng = np.random.default_rng(seed)
    bg = synth.background(width, height, seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), RANGE_FPS,
                             (width, height))
    truth: list[dict[str, Any]] = []
    index = 0
    heads: dict[tuple[Path, int], tuple[np.ndarray, int]] = {}
    for _ in range(gap_frames):
        writer.write(synth.scene(bg, [], rng=rng))
        index += 1
    for size in sizes:
        order = [people[i] for i in rng.permutation(len(people))]
        for s0 in range(0, len(order), per_segment):
            group = order[s0:s0 + per_segment]
            placed = []
            for j, (person, photo, enrolled) in enumerate(group):
                if (photo, size) not in heads:
                    heads[(photo, size)] = synth.head(photo, size)
                cx0 = int((j + 0.3) * width / per_segment)
                cy = int(rng.uniform(0.25, 0.65) * height)
                placed.append((person, enrolled, heads[(photo, size)], cx0, cy))
                truth.append({"person": person, "enrolled": enrolled, "size": size,
                              "first": index, "last": index + seg_frames - 1, "cx0": cx0,
                              "cy": cy, "dx": 2})
            for k in range(seg_frames):
                writer.write(synth.scene(bg, [(h, cx0 + 2 * k, cy, w)
                                              for _, _, (h, w), cx0, cy in placed], rng=rng))
            index += seg_frames
            for _ in range(gap_frames):
                writer.write(synth.scene(bg, [], rng=rng))
                index += 1
    writer.release()
    return truth


def _near(a: dict[str, Any], frame: int, box: BBox) -> bool:
    cx, cy = (box[1] + box[3]) / 2, (box[0] + box[2]) / 2
    tx, ty = a["cx0"] + a["dx"] * (frame - a["first"]), a["cy"]
    return abs(cx - tx) <= max(16, a["size"]) and abs(cy - ty) <= max(16, a["size"])


def run_range(video: Path, truth: list[dict[str, Any]], matcher: Matcher,
              overrides: dict[str, Any]) -> dict[str, Any]:
    """Detection/recognition recall per size and wrong-person events of one pipeline path."""
    settings = EdgeSettings.model_validate({"cameras": {"cam-1": {"source": str(video)}},
                                            "cooldown_s": 0, **overrides})
    events: list[MatchEvent] = []
    detected: set[int] = set()
    frame_no = [0]
    scale = [1.0]

    def on_frame(image: np.ndarray, ann: list[Any]) -> None:
        f = frame_no[0]
        frame_no[0] += 1
        scale[0] = 1920 / image.shape[1]
        for i, a in enumerate(truth):
            if i in detected or not a["first"] <= f <= a["last"]:
                continue
            for box, _label, _known in ann:
                if _near(a, f, tuple(round(v * scale[0]) for v in box)):  # type: ignore[arg-type]
                    detected.add(i)
    pipe = Pipeline(settings, settings.camera("cam-1"), GalleryHolder(matcher),
                    sinks=[events.append], on_frame=on_frame)
    c0, t0 = time.process_time(), time.perf_counter()
    metrics = pipe.run(FileSource(video))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    recognised: set[int] = set()
    wrong: list[dict[str, Any]] = []   # wrong-person and stranger events, kept to trace
    for e in events:
        f = e.source_frame or 0
        here = [i for i, a in enumerate(truth) if a["first"] <= f <= a["last"] + 3
                and _near(a, min(f, a["last"]), e.bbox)]
        if here and truth[here[0]]["enrolled"] and truth[here[0]]["person"] == e.person_id:
            recognised.add(here[0])
            continue
        wrong.append({"kind": "stranger" if here and not truth[here[0]]["enrolled"]
                      else "wrong_person", "frame": f, "person_id": e.person_id,
                      "bbox": list(e.bbox), "distance": e.distance, "margin": e.margin,
                      "visible": [(truth[i]["person"], truth[i]["size"]) for i in here]})
    per_size = {}
    for size in sorted({a["size"] for a in truth}):
        idx = [i for i, a in enumerate(truth) if a["size"] == size]
        enrolled = [i for i in idx if truth[i]["enrolled"]]
        per_size[size] = {"detected": round(sum(i in detected for i in idx) / len(idx), 3),
                          "recognised": round(sum(i in recognised for i in enrolled)
                                              / max(1, len(enrolled)), 3)}
    return {"per_size": per_size, "false_events": wrong,
            "wrong_person_events": sum(w["kind"] == "wrong_person" for w in wrong),
            "stranger_events": sum(w["kind"] == "stranger" for w in wrong),
            "events": len(events), "cpu_ms_per_frame": round(1000 * cpu / metrics.frames, 1),
            "fps": round(metrics.frames / wall, 1)}


def range_section(work: Path, lfw_entries: list[tuple[str, np.ndarray]], enrolled_n: int,
                  strangers_n: int) -> dict[str, Any]:
    ids = sorted({p for p, _ in lfw_entries})
    rng = np.random.default_rng(11)
    chosen = [ids[i] for i in sorted(rng.choice(len(ids), enrolled_n, replace=False))]
    people = [(p, sorted((LFW / "probes" / p).glob("*.jpg"))[0], True) for p in chosen]
    people += [(ph.stem, ph, False)
               for ph in sorted((LFW / "impostors").glob("*.jpg"))[:strangers_n]]
    video = work / "range.avi"
    truth = make_range_video(video, people, RANGE_SIZES)
    print(f"range video: 1920x1080 @ {RANGE_FPS:.0f} fps, {len(truth)} appearances "
          f"({enrolled_n} enrolled + {strangers_n} strangers per size)", file=sys.stderr)
    matcher = Matcher([padded("customers", lfw_entries)])
    return {"new": run_range(video, truth, matcher, {"detection": {"proposer": "hog"}}),
            "blazeface": run_range(video, truth, matcher, BLAZEFACE_PATH),
            "full_frame": run_range(video, truth, matcher, FULL_FRAME_PATH)}


def idle_section(work: Path, seconds: float, gallery: Gallery) -> dict[str, Any]:
    """(c): CPU per frame of an empty 1080p scene, pipeline vs decode only."""
    import cv2

    video = work / "empty.avi"
    bg = synth.background(1920, 1080, 9)
    rng = np.random.default_rng(9)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), RANGE_FPS,
                             (1920, 1080))
    frames = round(seconds * RANGE_FPS)
    for _ in range(frames):
        writer.write(synth.scene(bg, [], rng=rng))
    writer.release()
    c0 = time.process_time()
    n = sum(1 for _ in FileSource(video).frames())
    decode = 1000 * (time.process_time() - c0) / n
    out: dict[str, Any] = {"frames": n, "decode_ms": round(decode, 2)}
    for name, extra in (("pipeline", {}), ("full_frame", FULL_FRAME_PATH)):
        settings = EdgeSettings.model_validate({"cameras": {"cam-1": {"source": str(video)}},
                                                **extra})
        pipe = Pipeline(settings, settings.camera("cam-1"), GalleryHolder(Matcher([gallery])))
        c0 = time.process_time()
        metrics = pipe.run(FileSource(video))
        ms = 1000 * (time.process_time() - c0) / metrics.frames
        out[name] = {"cpu_ms": round(ms, 2), "x_decode": round(ms / decode, 2)}
    return out


def outcome(x: dict[str, Any]) -> str:
    """What every path prints: speed, CPU, events, wrong-person and stranger events."""
    return (f"{x['fps']} fps ({x['cpu_ms_per_frame']} CPU-ms/frame), events {x['events']}, "
            f"wrong-person {x['wrong_person_events']}, stranger events {x['stranger_events']}")


def print_range(r: dict[str, Any]) -> None:
    print("\n== (a) 1080p range video: recall per face width (HOG box px): regions searched by "
          "HOG (new), by BlazeFace + HOG confirm (blaze), the full-frame path")
    print(f"  {'face px':>8} {'detected new':>13} {'blaze':>6} {'full-frame':>11} "
          f"{'recognised new':>15} {'blaze':>6} {'full-frame':>11}")
    for size, n in r["new"]["per_size"].items():
        o, b = r["full_frame"]["per_size"][size], r["blazeface"]["per_size"][size]
        print(f"  {size:>8} {n['detected']:>13.0%} {b['detected']:>6.0%} {o['detected']:>11.0%} "
              f"{n['recognised']:>15.0%} {b['recognised']:>6.0%} {o['recognised']:>11.0%}")
    for name in ("new", "blazeface", "full_frame"):
        print(f"  {name:10}: {outcome(r[name])}")
    print("  targets: recall >=80% at 40 px, >=50% at 32 px, 0 wrong-person")


def print_idle(r: dict[str, Any]) -> None:
    print(f"\n== (c) empty 1080p scene, {r['frames']} frames: decode only {r['decode_ms']} "
          f"CPU-ms/frame; pipeline {r['pipeline']['cpu_ms']} ({r['pipeline']['x_decode']}x "
          f"decode); full-frame path {r['full_frame']['cpu_ms']} "
          f"({r['full_frame']['x_decode']}x)")
    print("  target: pipeline <= 1.5x decode-only")


def classic(args: argparse.Namespace, work: Path, miranda: list[tuple[str, np.ndarray]],
            lfw_entries: list[tuple[str, np.ndarray]], out: dict[str, Any]) -> tuple[Any, Any]:
    """The Hamilton clip and the entrance video, OneEye vs the naive loop."""
    visits = synth.lfw_visits(LFW, enrolled=args.visits, strangers=args.strangers,
                              seed=args.seed, eligible={p for p, _ in lfw_entries})
    video = work / "entrance.avi"
    truth = synth.make_entrance_video(video, visits, seed=args.seed)
    print(f"entrance video: {truth.frames} frames, {len(truth.visits)} visits "
          f"({sum(v.enrolled for v in truth.visits)} enrolled), 640x480 @ {truth.fps} fps",
          file=sys.stderr)
    g_ham = padded("customers", miranda)
    g_ent = padded("customers", lfw_entries)

    # ---------------------------------------------------------------- OneEye pipeline
    ev_h, fps_h, n_h, _, cpu_h = run_pipeline(HAMILTON, g_ham)
    ev_e, fps_e, n_e, m_e, cpu_e = run_pipeline(video, g_ent)
    rss_now, rss_peak = rss_mb()

    # ---------------------------------------------------------------- naive loop
    nv_h, nfps_h, _, rule_first, ncpu_h = run_naive(HAMILTON, miranda, None, ruled=g_ham)
    nv_e, nfps_e, nn_e, _, ncpu_e = run_naive(video, lfw_entries, args.naive_frames)
    usable = recognisable(video, truth, g_ent)

    first_naive = min((f for f, p in nv_h if p == "lin-manuel-miranda"), default=None)
    # Latency in media time: the event's own time against the first naive match's
    # presentation time, both from the container (not frame index / fps).
    ham_times = media.frame_times(HAMILTON)
    ham_lat = [e.media_time_s - ham_times[first_naive] for e in ev_h
               if first_naive is not None and e.media_time_s is not None]
    ham_lat_rule = [e.media_time_s - ham_times[rule_first] for e in ev_h
                    if rule_first is not None and e.media_time_s is not None]
    out["hamilton"] = {
        "oneeye": {"fps": round(fps_h, 1), "cpu_ms_per_frame": round(cpu_h, 1),
                   "frames": n_h, "events": len(ev_h),
                   "people": sorted({e.person_id for e in ev_h}),
                   "latency_s_from_first_naive_match": [round(x, 3) for x in ham_lat],
                   "latency_s_from_first_rule_acceptable_face": [round(x, 3)
                                                                for x in ham_lat_rule]},
        "naive": {"fps": round(nfps_h, 1), "cpu_ms_per_frame": round(ncpu_h, 1),
                  "events": len(nv_h),
                  "people": sorted({p for _, p in nv_h}), "first_match_frame": first_naive,
                  "first_rule_acceptable_frame": rule_first},
        "speedup": round(fps_h / nfps_h, 1),
    }
    slack = int(truth.fps * 1.0)
    out["entrance"] = {
        "oneeye": {"fps": round(fps_e, 1), "cpu_ms_per_frame": round(cpu_e, 1), "frames": n_e,
                   **score([(e.source_frame or 0, e.person_id) for e in ev_e], truth, None, slack,
                           usable),
                   "encodes": m_e.encodes},
        "naive": {"fps": round(nfps_e, 1), "cpu_ms_per_frame": round(ncpu_e, 1),
                  "frames": nn_e,
                  **score(nv_e, truth, nn_e, slack)},
        "speedup": round(fps_e / nfps_e, 1),
    }
    out["memory"] = {"gallery_identities": PAD_TO, "rss_mb": round(rss_now, 1),
                     "peak_rss_mb": round(rss_peak, 1)}
    if args.looks > 1:
        out["entrance_looks"] = entrance_looks(args, work, g_ent, {p for p, _ in lfw_entries})
    return rule_first, first_naive


def entrance_looks(args: argparse.Namespace, work: Path, gallery: Gallery,
                   eligible: set[str]) -> dict[str, Any]:
    """The same people, order and first photos, each enrolled visitor showing up to
    ``--looks`` of their probe photos in turn (as a visitor turns on the way in)."""
    visits = synth.lfw_visits(LFW, enrolled=args.visits, strangers=args.strangers,
                              seed=args.seed, eligible=eligible, looks=args.looks)
    video = work / "entrance-looks.avi"
    truth = synth.make_entrance_video(video, visits, seed=args.seed)
    events, fps, frames, metrics, cpu = run_pipeline(video, gallery)
    return {"looks": args.looks, "fps": round(fps, 1), "cpu_ms_per_frame": round(cpu, 1),
            "frames": frames, "encodes": metrics.encodes,
            **score([(e.source_frame or 0, e.person_id) for e in events], truth, None,
                    int(truth.fps * 1.0), recognisable(video, truth, gallery))}


def print_classic(out: dict[str, Any], rule_first: Any, first_naive: Any) -> None:
    h, e = out["hamilton"], out["entrance"]
    print("\n== short_hamilton_clip.mp4 (640x360, gallery: lin-manuel-miranda + 9,999 padding)")
    print(f"  naive : {h['naive']['fps']:6.1f} fps ({h['naive']['cpu_ms_per_frame']} CPU-ms/frame),"
          f" {h['naive']['events']} events "
          f"{h['naive']['people']}")
    o = h["oneeye"]
    print(f"  oneeye: {o['fps']:6.1f} fps ({o['cpu_ms_per_frame']} CPU-ms/frame),"
          f" {h['oneeye']['events']} events "
          f"{h['oneeye']['people']}  ({h['speedup']}x)")
    print(f"  latency: {h['oneeye']['latency_s_from_first_rule_acceptable_face']} s from the "
          f"first frame (#{rule_first}) whose face the gallery rule accepts in a full-res still; "
          f"{h['oneeye']['latency_s_from_first_naive_match']} s from naive's first 0.6 match "
          f"(#{first_naive}, a 48 px face at distance >0.5 that OneEye's rule rejects)")
    print(f"\n== entrance video (640x480, {e['oneeye']['visits']} visits, "
          f"{e['oneeye']['enrolled_visits']} enrolled; gallery 80 lfw + padding to 10,000)")
    for name in ("naive", "oneeye"):
        r = e[name]
        print(f"  {name:6}: {outcome(r)} over {r['frames']} frames, "
              f"recall {r['recall']} (of {r['recognisable_visits']} visits recognisable in a "
              f"still: {r['recall_recognisable']}), events/visit {r['events_per_visit']}, "
              f"latency median {r['latency_s_median']} s p95 {r['latency_s_p95']} s")
    print(f"  speedup {e['speedup']}x")
    if "entrance_looks" in out:
        r = out["entrance_looks"]
        print(f"  the same visits, each enrolled visitor showing {r['looks']} looks (probe "
              f"photos in turn): {outcome(r)}, recall {r['recall']} (of "
              f"{r['recognisable_visits']} recognisable in a still: {r['recall_recognisable']}),"
              f" events/visit {r['events_per_visit']}, latency median {r['latency_s_median']} s"
              f" p95 {r['latency_s_p95']} s")
    mem = out["memory"]
    print(f"\n== memory with a {PAD_TO:,}-identity gallery: RSS {mem['rss_mb']} MB "
          f"(peak {mem['peak_rss_mb']} MB)")
    print("\ntargets: >=5x throughput; recall >=0.95, 1 event/visit, 0 wrong-person; "
          "latency median <=0.5 s, p95 <=1 s; RSS <=500 MB")


class RssSampler:
    """Peak resident set size (MB) of this process while running, sampled every 0.2 s."""

    def __init__(self) -> None:
        import threading

        self.peak = rss_mb()[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_mb()[0])

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb()[0])


def head_ratio(photos: list[Path]) -> float:
    """Median pasted head width per face-box px of ``photos`` (to ask for face sizes)."""
    return float(np.median([synth.head(p, 100)[1] / 100 for p in photos]))


def bench_multicam(args: argparse.Namespace) -> dict[str, Any]:
    """N cameras of one 1080p entrance video at real time in one process (issue 11 §5b,
    issue 23 §1: where the CPU goes per stage, RSS per camera)."""
    work = Path(tempfile.mkdtemp(prefix="oneeye-bench-multicam-"))
    entries = lfw_gallery_entries()
    visits = synth.lfw_visits(LFW, enrolled=args.mc_visits, strangers=max(1, args.mc_visits // 4),
                              seed=args.seed, duration_s=2.5,
                              eligible={p for p, _ in entries})
    ratio = head_ratio([v.photo for v in visits])
    # the same arguments give the same video: kept in the bench cache (7 min to make)
    tag = f"{args.seed}-{args.mc_visits}-{args.mc_min_face}-{args.mc_max_face}"
    video = CACHE_DIR / f"multicam-{tag}.avi"
    known = video.with_suffix(".truth.json")
    if video.is_file() and known.is_file():
        truth = synth.GroundTruth.from_json(known.read_text())
    else:
        truth = synth.make_entrance_video(video, visits, fps=15.0, size=(1920, 1080),
                                          seed=args.seed,
                                          start_head_px=round(args.mc_min_face * ratio),
                                          end_head_px=round(args.mc_max_face * ratio))
        known.write_text(truth.to_json())
    print(f"1080p entrance video: {truth.frames} frames ({truth.frames / truth.fps:.0f} s), "
          f"{len(truth.visits)} visits, faces {args.mc_min_face}-{args.mc_max_face} px "
          f"(head x{ratio:.2f})", file=sys.stderr)
    gallery_path = work / "customers.npz"
    save(padded("customers", entries), gallery_path)
    holder = GalleryHolder(Matcher([load(gallery_path)]))
    faces.detect(np.zeros((80, 80, 3), np.uint8))    # dlib loaded before the baseline
    base_rss = rss_mb()[0]
    rows = []
    for n in args.cameras:
        settings = EdgeSettings.model_validate({
            "galleries": [str(gallery_path)], "realtime": True,
            "cameras": {f"cam-{i + 1}": {"source": str(video)} for i in range(n)},
            **({"detection_slots": args.slots} if args.slots else {}),
            **({"detection": {"proposer": args.proposer}} if args.proposer else {})})
        events: list[MatchEvent] = []
        c0, t0 = time.process_time(), time.perf_counter()
        with RssSampler() as rss:
            cameras = run_edge(settings, holder, sinks=[events.append])
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        cam_s = n * wall
        stage_cpu = {st: round(1000 * sum(c.metrics.cpu_s()[st] for c in cameras.values())
                               / cam_s, 1) for st in STAGES}
        per_cam = []
        for camera_id, cam in cameras.items():
            mine = [(e.source_frame or 0, e.person_id) for e in events
                    if e.camera_id == camera_id]
            sc = score(mine, truth, None, int(truth.fps), None)
            per_cam.append({"camera": camera_id, "recall": sc["recall"],
                            "wrong_person": sc["wrong_person_events"],
                            "latency_p95_s": sc["latency_s_p95"],
                            "frame_age_p95_s": pct(cam.metrics.frame_ages(), 95),
                            "frames": cam.metrics.frames,
                            "detections": cam.metrics.detections,
                            "encodes": cam.metrics.encodes,
                            "dropped_frames": cam.source.dropped_frames})
        rows.append({"cameras": n, "wall_s": round(wall, 1),
                     "cpu_pct_per_camera": round(100 * cpu / wall / n, 1),
                     "cpu_ms_per_camera_s": stage_cpu,
                     "rss_peak_mb": round(rss.peak, 1),
                     "rss_mb_per_camera": round((rss.peak - base_rss) / n, 1),
                     "per_camera": per_cam})
        r = rows[-1]
        print(f"N={n}: CPU {r['cpu_pct_per_camera']}% of a core per camera over "
              f"{r['wall_s']} s; stage CPU-ms per camera-second {stage_cpu}", file=sys.stderr)
    return {"video": {"frames": truth.frames, "fps": truth.fps, "size": "1920x1080",
                      "visits": len(truth.visits),
                      "enrolled": sum(v.enrolled for v in truth.visits),
                      "face_px": [args.mc_min_face, args.mc_max_face]},
            "baseline_rss_mb": round(base_rss, 1), "load_avg": list(os.getloadavg()),
            "runs": rows}


def print_multicam(out: dict[str, Any]) -> None:
    v = out["video"]
    print(f"\n== {v['size']} entrance video at real time ({v['fps']:.0f} fps, {v['frames']} "
          f"frames, {v['enrolled']} enrolled of {v['visits']} visits) as N cameras, one process")
    print(f"  faces {v['face_px'][0]}-{v['face_px'][1]} px; load average at the end "
          f"{', '.join(f'{x:.1f}' for x in out['load_avg'])} (timings are only comparable "
          "within one run)")
    print("  N  camera  recall  wrong  p95 latency s  p95 frame age s  frames  dropped  "
          "passes  encodes")
    for r in out["runs"]:
        for c in r["per_camera"]:
            print(f"  {r['cameras']:<2} {c['camera']:<7} {c['recall']!s:>6}  {c['wrong_person']:>5}"
                  f"  {c['latency_p95_s']!s:>13}  {c['frame_age_p95_s']!s:>16}  {c['frames']:>6}"
                  f"  {c['dropped_frames']:>7}  {c['detections']:>6}  {c['encodes']:>7}")
    print("\n  CPU-ms per camera-second by stage (thread CPU; 1000 = one core per camera)")
    print("  N  " + "".join(f"{st:>10}" for st in STAGES) + "  process %/cam  RSS MB  MB/cam")
    for r in out["runs"]:
        print(f"  {r['cameras']:<2} " + "".join(f"{r['cpu_ms_per_camera_s'][st]:>10}"
                                             for st in STAGES)
              + f"  {r['cpu_pct_per_camera']:>13}  {r['rss_peak_mb']:>6}  "
                f"{r['rss_mb_per_camera']:>6}")
    print(f"  (RSS before the runs, dlib and a {PAD_TO:,}-identity gallery loaded: "
          f"{out['baseline_rss_mb']} MB)")
    print("\ntargets: 4 cameras keep up (frame age p95 <= 1 s), recall within 5 points of "
          "N=1; at 8, frames skipped evenly and no camera stalls")


def lfw_gallery_entries() -> list[tuple[str, np.ndarray]]:
    """lfw_dev's gallery enrolled with the default policy (cached by bench/_common.py)."""
    photos = sorted((p for p in read_dataset(LFW) if p.split == "gallery"),
                    key=lambda p: str(p.path))
    enrolled = enrol_photos(photos, EnrolmentPolicy(), verbose=False)
    out = []
    for p in photos:
        r = enrolled[p.path]
        if isinstance(r, str):
            print(f"  enrolment skipped {p.path.name}: {r}", file=sys.stderr)
        else:
            out.append((p.identity, r))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visits", type=int, default=20, help="enrolled visits")
    ap.add_argument("--strangers", type=int, default=6)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--naive-frames", type=int, default=300)
    ap.add_argument("--looks", type=int, default=3,
                    help="classic: also run the entrance with this many looks per enrolled "
                    "visitor (1: skip)")
    ap.add_argument("--sections", default="classic,range,idle",
                    help="comma-separated: classic (Hamilton + entrance), range (a), idle (c)")
    ap.add_argument("--range-people", type=int, default=12,
                    help="(a): enrolled faces per size (plus a third as many strangers)")
    ap.add_argument("--idle-s", type=float, default=90.0,
                    help="(c): seconds of empty scene (3 sweeps at the default sweep_s)")
    ap.add_argument("--multicam", action="store_true",
                    help="only the multi-camera bench (issue 11 §5b)")
    ap.add_argument("--cameras", type=lambda v: [int(x) for x in v.split(",")],
                    default=[1, 2, 4, 8], help="camera counts for --multicam")
    ap.add_argument("--mc-visits", type=int, default=48,
                    help="enrolled visits per camera in the --multicam video (48: ~2 points "
                    "of recall each)")
    ap.add_argument("--mc-min-face", type=int, default=32,
                    help="--multicam: face box px as a visitor enters")
    ap.add_argument("--mc-max-face", type=int, default=160,
                    help="--multicam: face box px as a visitor leaves")
    ap.add_argument("--proposer", choices=["hog", "blazeface"], default=None,
                    help="--multicam: detection.proposer of every camera (default: the "
                    "setting's)")
    ap.add_argument("--slots", type=int, default=0,
                    help="--multicam: detection_slots (0: the setting's default)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.multicam:
        result = bench_multicam(args)
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            print_multicam(result)
        return 0
    sections = set(args.sections.split(","))
    out: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="oneeye-bench-edge-"))
    lfw_entries = lfw_gallery_entries()
    rule_first = first_naive = None
    if "classic" in sections:
        miranda = [("lin-manuel-miranda", encode_enrolment_photo(MIRANDA))]
        rule_first, first_naive = classic(args, work, miranda, lfw_entries, out)
    if "range" in sections:
        out["range"] = range_section(work, lfw_entries, args.range_people,
                                     max(1, args.range_people // 3))
    if "idle" in sections:
        out["idle"] = idle_section(work, args.idle_s, padded("customers", lfw_entries))
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    if "classic" in sections:
        print_classic(out, rule_first, first_naive)
    if "range" in sections:
        print_range(out["range"])
    if "idle" in sections:
        print_idle(out["idle"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
