"""The `isobuild` command line: parses options, runs one command, maps errors to exit codes."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from isobuild import interrupt, no_room
from isobuild.errors import ExitCode, IsobuildError
from isobuild.log import setup_logging

log = logging.getLogger("isobuild")

# The CLI's table of contents: each command lives in the module named for it, imported only
# when that command runs (a build does not pay for the release command's imports), with the
# first sentence of its help for the command list, so `isobuild --help` imports none of them
# (it took 2 s when it imported all ten: `release` alone loads oras and jsonschema's format
# grammars). tests/unit/test_cli_listing.py holds each summary to its command's help.
COMMANDS = {
    "boot-test": "isobuild.commands.boot_test:boot_test",
    "build": "isobuild.commands.build:build",
    "fetch": "isobuild.commands.payload:fetch",
    "flash": "isobuild.commands.flash:flash",
    "inspect": "isobuild.commands.inspect:inspect",
    "lock": "isobuild.commands.payload:lock",
    "release": "isobuild.commands.release:release",
    "standin-artifacts": "isobuild.commands.standin_artifacts:standin_artifacts",
    "standin-iso": "isobuild.commands.standin_iso:standin_iso",
    "verify": "isobuild.commands.verify:verify",
}
SUMMARIES = {
    "boot-test": "Boot ISO in QEMU six ways (BIOS, UEFI and UEFI with Secure Boot enforced, each"
    " from a CD and a USB stick) and report what the (stand-in) installer saw.",
    "build": "Write OUTPUT_DIR/<name>-<version>.iso, its .sha256, build-manifest.json, the SBOM"
    " (sbom.cdx.json) and SHA256SUMS over them, signed as SHA256SUMS.gpg with a key.",
    "fetch": "Download and verify every pinned k3s/Flux artifact into the cache.",
    "flash": "Write ISO to the USB stick DEVICE (or an image file) and read it back to verify.",
    "inspect": "Show ISO's volume ID, .disk/info, El Torito entries, partitions, GRUB menus and"
    " whether (and where) autoinstall is present.",
    "lock": "Show the pins; with --update, move them to the k3s stable / latest Flux releases.",
    "release": "Publish appliance releases: the Flux config bundle and the release manifest.",
    "standin-artifacts": "Write stand-in k3s/Flux release files and DIRECTORY/payload.lock.yaml"
    " pinning them.",
    "standin-iso": "Build OUT, a stand-in base ISO with the Ubuntu 24.04 layout and boot records.",
    "verify": "Check ISO with the files `isobuild build` wrote beside it: ISO.sha256, SHA256SUMS"
    " (+ SHA256SUMS.gpg with --keyring), build-manifest.json (every file on the ISO with its"
    " digest), sbom.cdx.json and the UEFI boot chain (same binaries, same signers).",
}


class _Group(click.Group):
    """Turns IsobuildError into one line (plus a hint) and a distinct exit code.

    A write that found no room (a full disk, no inodes, a quota, a read-only filesystem)
    and that the command did not name itself is still one line naming the file, exit 4:
    it is the machine's state, not a bug to show a traceback for.
    """

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
        except OSError as exc:
            if not no_room.is_no_room(exc):
                raise
            if debug:
                log.exception("failed")
            click.echo(f"error: {_no_room_message(exc)}", err=True)
            # The command's cleanup has run: whether inodes ran out cannot be seen any more.
            way_out = "point the command at another filesystem"
            click.echo(f"hint: {no_room.hint(exc.errno, way_out)}", err=True)
            ctx.exit(int(ExitCode.ENVIRONMENT))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from SUMMARIES: a command not yet loaded is not imported for it.

        Each row is the summary shortened by click itself (a stand-in command carrying the
        summary as its help), so the list reads as if every command had been loaded.
        """
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=SUMMARIES[name])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # Installed before click parses anything, so no Ctrl-C becomes click's "Aborted!".
        with interrupt.handled():
            try:
                return super().main(*args, **kwargs)
            except interrupt.Interrupted as exc:
                # Each command's own cleanup ran on the way out (a build leaves nothing).
                click.echo(f"interrupted ({exc}): stopped", err=True)
                sys.exit(exc.exit_code)


def _no_room_message(exc: OSError) -> str:
    """``FILE: <reason>``, or what was refused when the system did not say which file."""
    path = no_room.written(exc)
    if path is None:
        return f"a write was refused: {exc.strerror}"
    return f"{path}: {exc.strerror}"


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
