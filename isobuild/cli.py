"""The `isobuild` command line: parses options, runs one command, maps errors to exit codes."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from isobuild import interrupt
from isobuild.errors import IsobuildError
from isobuild.log import setup_logging

log = logging.getLogger("isobuild")

# The CLI's table of contents: each command lives in the module named for it, imported only
# when that command runs (a build does not pay for the release command's imports).
COMMANDS = {
    "build": "isobuild.commands.build:build",
    "inspect": "isobuild.commands.inspect:inspect",
    "standin-iso": "isobuild.commands.standin_iso:standin_iso",
    "standin-artifacts": "isobuild.commands.standin_artifacts:standin_artifacts",
    "boot-test": "isobuild.commands.boot_test:boot_test",
    "flash": "isobuild.commands.flash:flash",
    "fetch": "isobuild.commands.payload:fetch",
    "lock": "isobuild.commands.payload:lock",
    "release": "isobuild.commands.release:release",
    "verify": "isobuild.commands.verify:verify",
}


class _Group(click.Group):
    """Turns IsobuildError into one line (plus a hint) and a distinct exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except IsobuildError as exc:
            if debug:
                log.exception("failed")
            click.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(int(exc.exit_code))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # Installed before click parses anything, so no Ctrl-C becomes click's "Aborted!".
        with interrupt.handled():
            try:
                return super().main(*args, **kwargs)
            except interrupt.Interrupted as exc:
                # Each command's own cleanup ran on the way out (a build leaves nothing).
                click.echo(f"interrupted ({exc}): stopped", err=True)
                sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Log every external command; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress.")
@click.version_option(package_name="isobuild")
@click.pass_context
def main(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """Remaster Ubuntu Server 24.04 ISOs into unattended k3s/Flux appliance installers."""
    setup_logging(debug=debug, quiet=quiet)
    ctx.obj = {"debug": debug, "quiet": quiet}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
