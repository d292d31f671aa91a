"""The demo 'branch entrance' video: demo customers (shown with a *probe* photo, not the
enrolled one) and strangers walking in, made with :mod:`oneeye.synth`.

``python -m oneeye.local.demo OUT.mp4 [--customers N] [--strangers M]`` (deploy.sh
uses it). Customers are the LFW people among the stack's demo customers, so every
enrolled visitor in the video is someone the customer API knows.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from oneeye.config import load_settings
from oneeye.local.customer_api import DemoCustomer, demo_customers
from oneeye.local.settings import LocalSettings
from oneeye.synth import lfw_visits, make_entrance_video

log = logging.getLogger(__name__)


def lfw_customers(data_dir: Path, count: int) -> dict[str, DemoCustomer]:
    """LFW identity → demo customer, for the stack's first ``count`` customers."""
    out = {}
    for c in demo_customers(data_dir, count):
        if c.photos and c.photos[0].parent.parent.name == "gallery":
            out[c.photos[0].parent.name] = c
    return out


def make_demo_video(out: Path, *, data_dir: Path, customers: int, strangers: int,
                    demo_customer_count: int = 12, seed: int = 7,
                    duration_s: float = 3.0) -> Path:

    eligible = lfw_customers(data_dir, demo_customer_count)
    if customers > len(eligible):
        raise ValueError(f"only {len(eligible)} LFW demo customers; asked for {customers}")
    visits = lfw_visits(data_dir / "lfw_dev", enrolled=customers, strangers=strangers,
                        seed=seed, duration_s=duration_s, eligible=set(eligible))
    truth = make_entrance_video(out, visits, seed=seed)
    out.with_suffix(".truth.json").write_text(truth.to_json())
    stranger = next((v for v in visits if not v.enrolled), None)
    if stranger is not None:
        # For the amber-alert walk-through: upload this on the phone page and the
        # stranger walking in becomes a missing-person sighting.
        shutil.copyfile(stranger.photo, out.parent / "missing-person-example.jpg")
    names = ", ".join(f"{eligible[v.person].id} {v.person}" if v.enrolled else "stranger"
                      for v in visits)
    log.info("demo video %s: %d frames; visitors: %s", out, truth.frames, names)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--customers", type=int, default=6)
    parser.add_argument("--strangers", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="shared data (default: $ONEEYE_DATA or ../shared/data)")
    parser.add_argument("--force", action="store_true", help="rebuild even if OUT exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.out.is_file() and not args.force:
        print(f"demo video {args.out} already exists")
        return 0
    data_dir = args.data_dir or load_settings(LocalSettings, env_prefix="ONEEYE_LOCAL").data_dir
    if not (data_dir / "lfw_dev" / "probes").is_dir():
        print(f"error: demo photos not found under {data_dir}: set ONEEYE_DATA to the shared "
              "data directory (the one holding lfw_dev/)", file=sys.stderr)
        return 2
    try:
        make_demo_video(args.out, data_dir=data_dir, customers=args.customers,
                        strangers=args.strangers)
    except (OSError, ValueError) as exc:
        print(f"error: cannot make the demo video: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
