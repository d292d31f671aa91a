"""Regenerate the configuration references from the settings models.

`make docs` rewrites the blocks between the markers: the README's configuration
reference (edge, dashboard, local stack) and cloud/README.md's Lambda variables.
tests/test_docs.py fails when a committed file differs, so the references cannot
drift from code.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
CLOUD_README = REPO / "cloud" / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
LAMBDA_START, LAMBDA_END = "<!-- lambda-settings:start -->", "<!-- lambda-settings:end -->"

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


def render_lambdas() -> str:
    """One table per function: its environment variables, from its settings model."""
    from oneeye.cloud.settings import FUNCTIONS
    from oneeye.config import reference_markdown

    parts = []
    for name, model in FUNCTIONS.items():
        doc = (model.__doc__ or "").strip().splitlines()[0].replace("``", "`")
        parts.append(f"#### `{name}`\n\n{doc} Model: `oneeye.cloud.settings."
                     f"{model.__name__}`.\n\n{reference_markdown(model)}\n")
    return "\n".join(parts)


#: (file, start marker, end marker, renderer)
TARGETS = [(README, START, END, render), (CLOUD_README, LAMBDA_START, LAMBDA_END, render_lambdas)]


def updated(text: str, start: str = START, end: str = END, body: str | None = None) -> str:
    block = f"{start}\n{render() if body is None else body}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"no {start} … {end} block")
    return pattern.sub(lambda _: block, text)


def main() -> int:
    stale = []
    for path, start, end, renderer in TARGETS:
        text = path.read_text()
        new = updated(text, start, end, renderer())
        if new == text:
            continue
        stale.append(path.relative_to(REPO))
        if "--check" not in sys.argv:
            path.write_text(new)
    if "--check" in sys.argv:
        if stale:
            print(f"configuration reference stale in {', '.join(map(str, stale))}: "
                  "run `make docs`", file=sys.stderr)
            return 1
        return 0
    print("configuration references regenerated" if stale else "references up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
