"""The `isobuild` command line: parses options, runs one command, maps errors to exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from isobuild import interrupt
from isobuild.errors import IsobuildError
from isobuild.log import setup_logging

log = logging.getLogger("isobuild")


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


def _register() -> None:
    # Each command lives in the module named for it; this list is the CLI's table of contents.
    from isobuild.commands import (
        boot_test,
        build,
        inspect,
        payload,
        release,
        standin_artifacts,
        standin_iso,
        verify,
    )

    main.add_command(build.build)
    main.add_command(inspect.inspect)
    main.add_command(standin_iso.standin_iso)
    main.add_command(standin_artifacts.standin_artifacts)
    main.add_command(boot_test.boot_test)
    main.add_command(payload.fetch)
    main.add_command(payload.lock)
    main.add_command(release.release)
    main.add_command(verify.verify)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
