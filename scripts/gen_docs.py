"""Regenerate the README's configuration reference from the settings models.

`make docs` rewrites the block between the markers; tests/test_docs.py fails
when the committed README differs, so the reference cannot drift from code.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"

#: (heading, "module:Model", key prefix, how it is set)
MODELS = [
    ("Edge (`oneeye edge`, Greengrass component)", "oneeye.edge.settings:EdgeSettings", "",
     "`--config FILE` (YAML/JSON), `ONEEYE_EDGE__KEY__SUB=…`, flags; the component's "
     "recipe configuration uses the same keys."),
    ("One edge camera (`cameras.<camera_id>`)", "oneeye.edge.settings:CameraSettings",
     "cameras.<camera_id>.", "the edge's `cameras` map (`--source CAMERA_ID=URL` sets "
     "`source`); a camera's `detection` / `recognition` take any keys of the edge's blocks "
     "of the same name and override only those."),
    ("One device of a fleet (named shadow `oneeye-config`, `state.desired`)",
     "oneeye.edge.settings:DeviceConfig", "", "`./deploy.sh device-config --thing NAME "
     "--site SITE_ID --camera ID=URL …`; replaces the component configuration's `site_id` "
     "and whole `cameras` map on that device, without a redeploy."),
    ("Dashboard (`oneeye dashboard run`)", "dashboard.settings:DashboardSettings", "",
     "`--config FILE`, `ONEEYE_DASHBOARD__KEY=…`, flags."),
    ("Local stack (`oneeye up`, `./deploy.sh local`)", "oneeye.local.settings:LocalSettings", "",
     "`--config FILE`, `ONEEYE_LOCAL__KEY=…`, flags."),
]


def render() -> str:
    from oneeye.config import reference_markdown

    # Defaults must not depend on who runs the check: a developer's ONEEYE_DATA
    # would otherwise leak into the committed reference.
    for key in [k for k in os.environ if k.startswith("ONEEYE_")]:
        del os.environ[key]

    parts = []
    for title, target, prefix, how in MODELS:
        module, _, name = target.partition(":")
        model = getattr(importlib.import_module(module), name)
        table = reference_markdown(model, prefix=prefix)
        parts.append(f"#### {title}\n\nSet with {how}\n\n{table}\n")
    return "\n".join(parts)


def updated(text: str) -> str:
    block = f"{START}\n{render()}\n{END}"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {START} … {END} block")
    return pattern.sub(lambda _: block, text)


def main() -> int:
    text = README.read_text()
    new = updated(text)
    if "--check" in sys.argv:
        if new != text:
            print("README configuration reference is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print("README configuration reference regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
