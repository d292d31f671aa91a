"""The ``oneeye`` command: a click group whose subcommands live in ``oneeye/commands/``.

Logging is configured here and only here (entry points own logging). Each
command module exposes ``register(group)``. Command modules import OneEye at their
top; the heavy native libraries (cv2, dlib, awscrt) load only inside the functions
that use them, so ``oneeye --help`` (which imports every command module) stays well
under a second.
"""

from __future__ import annotations

import importlib
import sys

import click

from oneeye.errors import OneEyeError
from oneeye.logs import configure

#: One module per command family; each defines ``register(cli)``.
COMMAND_MODULES = [
    "oneeye.commands.core",
    "oneeye.commands.dashboard",
    "oneeye.commands.edge",
    "oneeye.commands.up",
    "oneeye.commands.alerts",
    "oneeye.commands.amber",
]


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OneEyeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--log-json", is_flag=True, help="One JSON object per log line.")
def cli(log_level: str, log_json: bool) -> None:
    """OneEye: edge face recognition with AWS IoT Greengrass v2."""
    setup_logging(log_level, json_lines=log_json)


def setup_logging(level: str = "INFO", *, json_lines: bool = False) -> None:

    configure(level, json_lines=json_lines)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def main() -> None:
    cli(prog_name="oneeye")


if __name__ == "__main__":
    main()
