"""The ``oneeye`` command: a click group whose subcommands live in ``oneeye/commands/``,
plus the command groups other packages add through the ``oneeye.commands`` entry point.

Logging is configured here and only here (entry points own logging). Each
command module exposes ``register(group)``. Command modules import OneEye at their
top; the heavy native libraries (cv2, dlib, awscrt) load only inside the functions
that use them, so ``oneeye --help`` (which imports every command module) stays well
under a second.

Plugins: an entry point ``NAME = "package.module:group"`` in the group
``oneeye.commands`` (pyproject's ``[project.entry-points."oneeye.commands"]``) is the
``oneeye NAME …`` command, imported only when it runs or ``--help`` lists it. That is
how ``oneeye dashboard`` reaches ``dashboard.cli`` while ``oneeye`` never imports the
dashboard package.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys

import click

from oneeye import aws
from oneeye.errors import ConfigError, OneEyeError
from oneeye.logs import configure

log = logging.getLogger(__name__)

#: One module per command family; each defines ``register(cli)``.
COMMAND_MODULES = [
    "oneeye.commands.core",
    "oneeye.commands.edge",
    "oneeye.commands.up",
    "oneeye.commands.alerts",
    "oneeye.commands.amber",
]
#: The entry point group of command plugins: name → ``module:attribute`` of a click command.
PLUGIN_GROUP = "oneeye.commands"
#: This repository's own plugins, by the same ``module:attribute``: used when the installed
#: metadata predates them (an editable install not reinstalled since the entry point was
#: added) and the module is importable; an installed entry point of the same name wins.
BUNDLED_PLUGINS = {"dashboard": "dashboard.cli:dashboard_group"}


def plugin_commands() -> dict[str, str]:
    """name → ``module:attribute`` of every command plugin that can be loaded here."""
    found = {ep.name: ep.value
             for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP)}
    for name, target in BUNDLED_PLUGINS.items():
        if name not in found and importlib.util.find_spec(target.partition(":")[0]):
            found[name] = target
    return found


def load_command(target: str) -> click.Command:
    """The click command at ``module:attribute``; ConfigError if it is not one."""
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute or "", None)
    if not isinstance(command, click.Command):
        raise ConfigError(f"command plugin {target!r} is not a click command "
                          "(an entry point of oneeye.commands names module:attribute)")
    return command


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OneEyeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except aws.failures() as exc:  # boto3's, from any command: a sentence, not a traceback
            where = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
            click.echo(f"error: cannot reach {where}: {exc}. Is the local stack running "
                       "(./deploy.sh local)? On AWS: are credentials and region set?",
                       err=True)
            sys.exit(2)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        target = plugin_commands().get(cmd_name)
        return load_command(target) if target else None


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
