"""``oneeye gallery build|show``, ``oneeye identify``, ``oneeye analyze``.

Output contracts: ``identify`` and ``analyze`` print one JSON object per line on
stdout (logs go to stderr), so they pipe into ``jq``. A bad image is a result
line with ``"error"``, not a failed command: non-zero exit is for usage errors.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from oneeye import faces, images
from oneeye import gallery as gal
from oneeye.commands import ui
from oneeye.config import load_settings
from oneeye.edge.detect.replay import TrackReplay
from oneeye.edge.settings import EdgeSettings, ThresholdOverride
from oneeye.errors import ImageError, OneEyeError
from oneeye.images import even_light
from oneeye.media import expected_frames, is_video, iter_media
from oneeye.types import IMAGE_SUFFIXES, WATCHLISTS


def register(cli: click.Group) -> None:
    cli.add_command(gallery_group)
    cli.add_command(identify)
    cli.add_command(analyze)


@click.group("gallery")
def gallery_group() -> None:
    """Build and inspect gallery files."""


@gallery_group.command("build")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--watchlist", required=True, type=click.Choice(WATCHLISTS))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output .npz (a .json manifest is written beside it).")
@click.option("--version", "version", default=1, show_default=True, type=click.IntRange(0))
@click.option("--max-distance", type=click.FloatRange(0.05, 1.5), default=None,
              help="Override the watchlist's default threshold.")
@click.option("--min-margin", type=click.FloatRange(0.0, 1.0), default=None,
              help="Override the watchlist's default margin to the runner-up.")
@click.option("--jitters", type=click.IntRange(1, 100), default=None,
              help="dlib num_jitters per enrolment photo (default from EnrolmentPolicy).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary for machines.")
def gallery_build(src_dir: Path, watchlist: str, out: Path, version: int,
                  max_distance: float | None, min_margin: float | None, jitters: int | None,
                  as_json: bool) -> None:
    """Enrol SRC_DIR/<person_id>/<photo> into a gallery; report every file not enrolled.

    Photos: JPEG/JFIF, PNG, WebP, GIF, BMP, TIFF (HEIC is refused by name). Every rejected
    photo, every skipped file and every person left without a usable photo is listed.
    """


    rule = gal.effective_rule(gal.DEFAULT_RULES[watchlist], ThresholdOverride(
        max_distance=max_distance, min_margin=min_margin))
    policy = gal.EnrolmentPolicy()
    if jitters is not None:
        policy = replace(policy, jitters=jitters)
    listing = images.list_photo_dir(src_dir)
    if not listing.photos:
        raise OneEyeError(f"{src_dir}: no photos found (expected SRC_DIR/<person_id>/<photo>, "
                          f"one of {', '.join(sorted(IMAGE_SUFFIXES))}); "
                          f"{len(listing.skipped)} other files skipped")
    with ui.progress("enrolling", len(listing.photos)) as advance:
        g, report = gal.enrol(listing.photos, watchlist=watchlist, policy=policy, rule=rule,
                              version=version, progress=lambda person, src: advance(src))
    manifest = gal.save(g, out)
    missing = sorted(set(listing.people) - set(g.identities()))
    skipped = [s.__dict__ for s in listing.skipped]
    # One face under two ids: reported, and treated as one identity group by the margin.
    duplicates = g.duplicates()
    if as_json:
        click.echo(json.dumps({"gallery": str(out), "manifest": manifest,
                               "photos": len(listing.photos), "skipped": skipped,
                               "not_enrolled": missing,
                               "duplicates": [d.__dict__ for d in duplicates],
                               **report.as_dict()}))
        return
    click.echo(f"gallery {out}: watchlist {watchlist} v{version}, {len(g.identities())} "
               f"identities, {len(g)} encodings from {len(listing.photos)} photos "
               f"({len(report.rejected)} rejected, {len(skipped)} other files skipped)")
    click.echo(f"rule: max_distance {g.rule.max_distance}, min_margin {g.rule.min_margin}")
    for r in report.rejected:
        click.echo(f"  rejected {r.source}: {r.reason}: {r.message}")
    for w in report.warnings:
        click.echo(f"  warning {w.source}: {w.reason}: {w.message}")
    for s in listing.skipped:
        click.echo(f"  skipped {s.path}: {s.reason}: {s.message}")
    if missing:
        click.echo(f"  not enrolled (no usable photo): {', '.join(missing)}")
    for d in duplicates:
        click.echo(f"  duplicate {d.person_a} {d.person_b}: {d.message()}")


@gallery_group.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def gallery_show(file: Path, as_json: bool) -> None:
    """Version, thresholds and learning rule of a gallery file; each person's templates
    (kind photo | sighting | negative, source, who confirmed it and when) and the pairs of
    ids that look like one face."""

    g = gal.load(file)
    ids = g.identities()
    # A person may hold only negatives (their photos removed, a "Not this person" kept).
    negated = [] if g.neg_person_ids is None else g.neg_person_ids.tolist()
    people = sorted(set(ids) | {str(p) for p in negated})
    templates = {p: [t.to_dict() for t in g.templates(p)] for p in people}
    duplicates = g.duplicates()
    info = {"file": str(file), "watchlist": g.watchlist, "version": g.version,
            "created_at": g.created_at, "identities": len(ids), "encodings": len(g),
            "negatives": g.negatives(),
            "rule": {"max_distance": g.rule.max_distance, "min_margin": g.rule.min_margin},
            "learning": g.learning.to_dict(), "people": ids, "templates": templates,
            "duplicates": [d.__dict__ for d in duplicates]}
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"{file}: watchlist {g.watchlist} v{g.version} created {g.created_at}")
    click.echo(f"rule: max_distance {g.rule.max_distance}, min_margin {g.rule.min_margin}")
    click.echo(f"learning: {'on' if g.learning.enabled else 'off'}")
    click.echo(f"{len(ids)} identities, {len(g)} encodings, {g.negatives()} negatives")
    for person_id in people:
        kinds = [t["kind"] for t in templates[person_id]]
        counts = ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) != 1 else ''}"
                           for k in ("photo", "sighting", "negative") if k in kinds)
        click.echo(f"  {person_id}: {counts}")
        for t in templates[person_id]:
            who = f" by {t['by']}" if t["by"] else ""
            when = f" at {t['at']}" if t["at"] else ""
            click.echo(f"    {t['template_id']} {t['kind']} {t['source']}{who}{when}")
    for d in duplicates:
        click.echo(f"  duplicate {d.person_a} {d.person_b}: {d.message()}")


def _load_matcher(galleries: tuple[Path, ...]) -> Any:

    return gal.Matcher([gal.load(p) for p in galleries])


def _device(config: Path | None, galleries: tuple[Path, ...], upsample: int | None
            ) -> tuple[tuple[Path, ...], dict[str, Any], int]:
    """(galleries, threshold overrides, upsample) as the device with ``config`` (an edge
    settings file, as ``oneeye edge --config``) has them; flags win over the file."""
    if config is None:
        return galleries, {}, 1 if upsample is None else upsample

    s = load_settings(EdgeSettings, path=config)
    return (galleries or tuple(s.galleries), {str(k): v for k, v in s.thresholds.items()},
            s.detection.upsample if upsample is None else upsample)


def _face_result(match: Any, cand: Any) -> dict[str, Any]:
    if match is not None:
        return {"person_id": match.person_id, "watchlist": match.watchlist,
                "distance": round(match.distance, 4), "margin": round(match.margin, 4)}
    return {"person_id": None, "watchlist": None,
            "distance": round(cand.distance, 4) if cand and np.isfinite(cand.distance) else None,
            "margin": round(cand.margin, 4) if cand else None}


_CONFIG = click.option(
    "--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An edge settings file (as `oneeye edge --config`): its galleries, per-watchlist "
         "thresholds and detection upsampling apply, so a replay decides like the device.")


@click.command()
@click.option("--gallery", "galleries", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_CONFIG
@click.option("--upsample", default=None, type=click.IntRange(0, 3),
              help="HOG upsampling  [default: the config's, else 1]")
@click.option("--model", default="hog", show_default=True, type=click.Choice(["hog", "cnn"]))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
def identify(galleries: tuple[Path, ...], config: Path | None, upsample: int | None, model: str,
             images: tuple[Path, ...]) -> None:
    """Identify the faces in IMAGES; one JSON line per image.

    An image that cannot be used is a line with ``error`` and ``reason`` (see
    ``oneeye.images.load_image``); a summary of skipped images goes to stderr.
    """

    galleries, overrides, upsample_n = _device(config, galleries, upsample)
    if not galleries:
        raise click.UsageError("give at least one --gallery (or a --config naming galleries)")
    matcher = _load_matcher(galleries)
    skipped = 0
    with ui.progress("identifying", len(images)) as advance:
        for path in images:
            try:
                # a dark photo is evened out first, as the device does with a dark frame
                image, _ = even_light(faces.load_image(path), rgb=True)
                boxes = faces.detect(image, model=model, upsample=upsample_n)  # type: ignore[arg-type]
                encs = faces.encode(image, boxes)
                results = matcher.identify(np.stack(encs), overrides) if encs else []
                out = [{"bbox": list(b), **_face_result(m, c)}
                       for b, (m, c) in zip(boxes, results, strict=True)]
                click.echo(json.dumps({"image": str(path), "faces": out}))
            except ImageError as exc:
                skipped += 1
                click.echo(json.dumps({"image": str(path), "error": str(exc),
                                       "reason": exc.reason}))
            advance(path.name)
    if skipped:
        click.echo(f"{skipped} of {len(images)} images skipped (see their \"error\" lines)",
                   err=True)


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--gallery", "galleries", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_CONFIG
@click.option("--fps-max", type=click.FloatRange(0.01, 120), default=None,
              help="Sample at most this many frames per second of media time.")
@click.option("--max-width", type=click.IntRange(64, 8192), default=None,
              help="Downscale wider frames first (boxes are reported in source pixels).")
@click.option("--upsample", default=None, type=click.IntRange(0, 3),
              help="HOG upsampling  [default: the config's, else 1]")
@click.option("--encodings", "with_encodings", is_flag=True, help="Include 128-d encodings.")
def analyze(source: Path, galleries: tuple[Path, ...], config: Path | None,
            fps_max: float | None, max_width: int | None, upsample: int | None,
            with_encodings: bool) -> None:
    """Offline analysis of a video or image: JSON lines per sampled frame.

    Still images (any format the decoder reads, EXIF orientation applied) are one frame,
    decided on their own. Videos (read with OpenCV) and animated GIF/WebP/APNG (every
    frame) are decided like the device: looks are grouped into tracks by the device's
    tracker and each track decided on its fused looks by the device's rule. A face then
    carries its ``track`` and its own ``distance``/``margin``; ``person_id`` appears only
    once its track is accepted; one ``{"track": …, "decision": …}`` line per track ends
    the output. A progress bar runs on stderr when it is a terminal.
    """

    galleries, overrides, upsample_n = _device(config, galleries, upsample)
    matcher = _load_matcher(galleries) if galleries else None
    replay = _replay(config, matcher, overrides) if is_video(source) else None
    with ui.progress("analysing", expected_frames(source, fps_max=fps_max)) as advance:
        for frame in iter_media(source, fps_max=fps_max):
            click.echo(json.dumps({"source": str(source), "frame": frame.index,
                                   "media_time_s": round(frame.media_time_s, 3),
                                   "faces": _analyze_frame(frame, matcher, overrides,
                                                           max_width, upsample_n,
                                                           with_encodings, replay)}))
            advance(f"{frame.media_time_s:.1f} s")
    if replay is not None:
        for v in replay.finish():
            line: dict[str, Any] = {"source": str(source), "track": v.track_id,
                                    "first_frame": v.first_frame, "last_frame": v.last_frame,
                                    "looks": v.looks, "decision": v.decision}
            if v.match is not None:
                line.update(_face_result(v.match, None))
            click.echo(json.dumps(line))


def _replay(config: Path | None, matcher: Any, overrides: dict[str, Any]) -> Any:
    """The device's track decision for a video (None without a gallery)."""
    if matcher is None:
        return None
    s = load_settings(EdgeSettings, path=config) if config is not None else EdgeSettings()
    return TrackReplay(matcher, s.recognition, s.tracking, overrides)


def _analyze_frame(frame: Any, matcher: Any, overrides: dict[str, Any], max_width: int | None,
                   upsample: int, with_encodings: bool, replay: Any) -> list[dict[str, Any]]:

    image, _ = even_light(frame.rgb, rgb=True)   # as the device does with a dark frame
    scale = 1.0
    if max_width and image.shape[1] > max_width:
        scale = max_width / image.shape[1]
    found = faces.analyze(image, upsample=upsample, scale=scale)
    encs = [f.encoding for f in found if f.encoding is not None]
    results = (matcher.identify(np.stack(encs), overrides)
               if matcher is not None and encs else [])
    tracks = replay.frame(frame.index, frame.media_time_s, found) if replay is not None else []
    out = []
    for i, f in enumerate(found):
        face: dict[str, Any] = {"bbox": list(f.bbox),
                                "landmarks": [list(p) for p in f.landmarks],
                                "quality": {"size_px": f.quality.size_px,
                                            "blur": f.quality.blur,
                                            "brightness": f.quality.brightness,
                                            "low_light": f.quality.low_light}}
        if matcher is not None:
            face["match"] = _face_result(*results[i]) if results else None
        if tracks:
            # A look's own distance stays; the name is the track's, once accepted.
            track_id, accepted = tracks[i]
            face["track"] = track_id
            look = face["match"] or {}
            face["match"] = {"person_id": accepted.person_id if accepted else None,
                             "watchlist": accepted.watchlist if accepted else None,
                             "distance": look.get("distance"), "margin": look.get("margin")}
        if with_encodings and f.encoding is not None:
            face["encoding"] = [round(float(v), 6) for v in f.encoding]
        out.append(face)
    return out
