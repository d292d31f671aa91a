"""``oneeye edge``: run the realtime pipeline on cameras, streams, files or folders.

``--source URL`` is one camera (``--camera-id``, else the settings' only camera, else
``cam-1``); ``--source CAMERA_ID=URL``, repeatable, runs exactly those cameras in this one
process (each keeps the per-camera settings given under ``cameras``). Without
``--source`` the settings' ``cameras`` run.

Events go to ``--events-out`` (JSONL, one ``oneeye.match/1`` per line) and/or the
uplink chosen by ``--publish``. Ctrl-C or SIGTERM stops cleanly: pending
encodings finish and their events are written before exit. The metrics
summary is printed to stderr at exit.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from oneeye.config import load_settings, validate
from oneeye.edge.device.runner import load_holder, run_edge
from oneeye.edge.settings import DEFAULT_CAMERA_ID, EdgeSettings
from oneeye.types import id_refusal


def register(cli: click.Group) -> None:
    cli.add_command(edge)


@click.command("edge")
@click.option("--source", "sources", multiple=True, metavar="[CAMERA_ID=]SOURCE",
              help="Webcam index, rtsp/http URL, video file or image folder; "
                   "CAMERA_ID=SOURCE, repeatable, for several cameras.")
@click.option("--gallery", "galleries", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Gallery .npz (repeat for several watchlists).")
@click.option("--events-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Append events to this JSONL file.")
@click.option("--publish", help="none | ipc | mqtt://host:port | mqtts://host:port")
@click.option("--realtime/--no-realtime", default=None,
              help="Pace a file source at its fps like a camera.")
@click.option("--loop/--no-loop", default=None, help="Restart a file source at its end.")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False,
                                                    path_type=Path),
              help="Settings file (YAML or JSON); env ONEEYE_EDGE__… and flags override it.")
@click.option("--device-id")
@click.option("--site-id")
@click.option("--camera-id", help="The camera of a plain --source SOURCE.")
@click.option("--preview-port", type=click.IntRange(1, 65535),
              help="Serve an annotated MJPEG preview on 127.0.0.1:PORT.")
@click.option("--duration", "duration_s", type=click.FloatRange(0, min_open=True),
              help="Stop after this many seconds.")
def edge(sources: tuple[str, ...], galleries: tuple[Path, ...], events_out: Path | None,
         publish: str | None, realtime: bool | None, loop: bool | None, config: Path | None,
         device_id: str | None, site_id: str | None, camera_id: str | None,
         preview_port: int | None, duration_s: float | None) -> None:
    """Recognise enrolled faces on a video source and emit oneeye.match/1 events."""

    overrides: dict[str, Any] = {
        "events_out": str(events_out) if events_out else None,
        "realtime": realtime, "loop": loop, "device_id": device_id, "site_id": site_id,
        "preview_port": preview_port,
        "galleries": [str(g) for g in galleries] or None,
    }
    if publish is not None:
        overrides["publish"] = {"url": publish}
    settings = load_settings(EdgeSettings, path=config, env_prefix="ONEEYE_EDGE",
                             overrides=overrides, root="edge")
    if sources:
        data = settings.model_dump(exclude_unset=True)
        data["cameras"] = cameras_from_flags(sources, settings, camera_id)
        settings = validate(EdgeSettings, data, root="edge")
    if not settings.galleries and not settings.gallery_sync.enabled:
        raise click.UsageError("give at least one --gallery (or enable gallery_sync)")
    if settings.publish.url == "none" and settings.events_out is None:
        click.echo("warning: --publish none without --events-out: events are only logged",
                   err=True)
    holder = load_holder(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():   # asked twice: the user wants out now
            raise KeyboardInterrupt
        click.echo(f"\nstopping ({signal.Signals(signum).name}); finishing pending work…",
                   err=True)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cameras = run_edge(settings, holder, stop_event=stop, duration_s=duration_s)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for camera_id, cam in cameras.items():
        click.echo(f"{camera_id}: {cam.metrics.summary()}, camera {cam.source.state}, "
                   f"dropped frames {cam.source.dropped_frames}", err=True)


def cameras_from_flags(sources: tuple[str, ...], settings: Any,
                       camera_id: str | None = None) -> dict[str, Any]:
    """``--source`` values → the ``cameras`` map (as data, validated by the caller).

    ``NAME=SOURCE`` when the part before the first ``=`` has no ``/`` (URLs and paths
    do; a camera name never does) and the whole value is not an existing path
    (``rtsp://h/s?a=b`` and an existing ``my=clip.mp4`` stay plain sources); a plain
    ``SOURCE`` is the camera ``camera_id`` (``--camera-id``), else the settings' only
    camera, else ``cam-1``. A NAME outside the id grammar (``Eingang-Süd``, ``cam 1``, an
    empty one) is refused with the rule it breaks, never taken for part of a file name.
    A camera named here keeps its settings from ``cameras`` with its source replaced;
    others are not run.
    """
    plain = camera_id or (next(iter(settings.cameras)) if len(settings.cameras) == 1
                          else DEFAULT_CAMERA_ID)
    out: dict[str, Any] = {}
    for value in sources:
        camera, sep, spec = value.partition("=")
        if not sep or "/" in camera or "\\" in camera or Path(value).exists():
            camera, spec = plain, value
        else:
            refusal = id_refusal("camera name", camera)
            if refusal is not None:
                raise click.BadParameter(f"{value!r}: {refusal}", param_hint="--source")
            if not spec:
                raise click.BadParameter(f"{value!r}: camera {camera!r} has no source after "
                                         "'='", param_hint="--source")
        if camera in out:
            raise click.BadParameter(f"camera {camera!r} is given twice", param_hint="--source")
        known = settings.cameras.get(camera)
        base = known.model_dump(exclude_unset=True) if known is not None else {}
        out[camera] = {**base, "source": spec}
    return out
