"""``python3 -m host_service``: serve, the console helpers and the support commands."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from host_service import console, sessions, setup_token
from host_service.app import App
from host_service.errors import (
    EXIT_ENVIRONMENT,
    EXIT_USAGE,
    HostNotReady,
    ServiceError,
)
from host_service.host import LinuxHost
from host_service.runtime import real_runtime
from host_service.server import make_server, parse_listen
from host_service.service import Service
from host_service.settings import Settings, load_settings
from host_service.store import STATE_DISK_HINT, StateWriteFailed
from host_service.support import commands as support

log = logging.getLogger("host_service")

EXIT_OK = 0
BUNDLE_COMMANDS = ("support-bundle", "collect-support-bundle")
SUPPORT_COMMANDS = (*BUNDLE_COMMANDS, "reset-data", "repair-release")
# The options only some commands take (the rest, --root, --settings and --debug, are for
# all): one given to another command is refused, never ignored (a --dry-run the command did
# not read would let it run for real).
_ONLY_FOR = {
    "listen": ("serve",),
    "output": BUNDLE_COMMANDS,
    "max_size_mb": BUNDLE_COMMANDS,
    "cluster_seconds": BUNDLE_COMMANDS,
    "journal_hours": BUNDLE_COMMANDS,
    "yes": ("reset-data",),
    "dry_run": ("reset-data",),
    "journal_socket": SUPPORT_COMMANDS,
}
_FULL_DISK_HINT = (
    f"{STATE_DISK_HINT}; the service starts again by itself (Restart=on-failure) and "
    "resumes where it was"
)


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _report(exc: ServiceError, hint: str | None = None) -> int:
    """One error line (more for a list of problems), its hint, and the kind's exit code."""
    hint = hint or exc.hint
    _err(f"error: {exc}" + (f"\nhint: {hint}" if hint else ""))
    return exc.exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m host_service",
        description="The appliance setup/status service and its console helpers.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=("serve", "reset-token", "console-banner", *SUPPORT_COMMANDS),
        help="serve (default): run the service; reset-token: new token, ends all sessions; "
        "console-banner: refresh the /etc/issue block; support-bundle (or "
        "collect-support-bundle): one .tar.gz for support; reset-data: back to freshly "
        "installed (asks first); repair-release: apply the recorded release again",
    )
    parser.add_argument("--root", type=Path, default=Path("/"), help="prefix for system paths")
    parser.add_argument("--settings", type=Path, help="build-info.json (default: under --root)")
    parser.add_argument("--listen", help="ADDR:PORT, [IPv6]:PORT or :PORT (default :<port>)")
    parser.add_argument("--debug", action="store_true", help="log every command and request")
    support.add_bundle_arguments(parser)
    support.add_command_arguments(parser)
    return parser


def _refresh_banner(settings: Settings, token: str) -> None:
    console.show(settings, addresses=LinuxHost().addresses(), token=token)


def reset_token(settings: Settings) -> int:
    settings.paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = setup_token.rotate(settings.paths.token_file)
    sessions.rotate_key(settings.paths.session_key_file)
    _refresh_banner(settings, token)
    log.warning("setup token reset: every session has ended; the new token is on the console")
    # The token itself is shown only on the console, never printed where logs may keep it.
    sys.stdout.write(
        "setup token rotated; every session has ended; the new token is shown on the "
        f"console ({settings.paths.issue})\n"
    )
    return EXIT_OK


def console_banner(settings: Settings) -> int:
    token = setup_token.load_or_create(settings.paths.token_file)
    _refresh_banner(settings, token)
    return EXIT_OK


def serve(settings: Settings, listen: str | None) -> int:
    try:
        host, port = parse_listen(listen) if listen else ("", settings.port)
    except ValueError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    return run_service(Service(settings, real_runtime(settings)), host, port)


def run_service(service: Service, host: str, port: int) -> int:
    """Start ``service``, answer HTTP on ``host:port`` until SIGTERM/SIGINT, stop cleanly."""
    try:
        service.start()
    except HostNotReady as exc:
        service.stop()
        return _report(exc, _FULL_DISK_HINT if isinstance(exc, StateWriteFailed) else None)
    try:
        server = make_server(host, port, App(service), service.settings.http)
    except OSError as exc:
        service.stop()
        _err(f"error: cannot listen on {host or '*'}:{port}: {exc.strerror}")
        return EXIT_ENVIRONMENT
    bound = server.server_address
    log.info("listening on %s:%s (state %s)", bound[0], bound[1], service.settings.paths.state)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        # Both at once: the step's program is ended (so none outlives the service) while the
        # HTTP server winds down; the run resumes at its step on the next start.
        threading.Thread(target=service.stop_bootstrap, daemon=True).start()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        service.stop()
    return EXIT_OK


def _not_for(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The first option given that ``args.command`` does not take, as the user wrote it."""
    for action in parser._actions:  # argparse has no public list of them
        commands = _ONLY_FOR.get(action.dest)
        given = getattr(args, action.dest, None) != parser.get_default(action.dest)
        if commands is not None and given and args.command not in commands:
            names = ", ".join(commands[:-1]) + " or " if len(commands) > 1 else ""
            return f"{action.option_strings[0]} is for {names}{commands[-1]}, not {args.command}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    misplaced = _not_for(parser, args)
    if misplaced is not None:
        parser.error(misplaced)  # usage and exit 2; nothing was done
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    settings: Settings | None = None
    try:
        settings = load_settings(args.root, args.settings)
        if args.command == "reset-token":
            return reset_token(settings)
        if args.command == "console-banner":
            return console_banner(settings)
        if args.command in SUPPORT_COMMANDS:
            support.log_to_journal(args.command, args.journal_socket)
            if args.command == "reset-data":
                return support.reset_data(settings, args)
            if args.command == "repair-release":
                return support.repair(settings, args)
            return support.support_bundle(settings, args)
        return serve(settings, args.listen)
    except ServiceError as exc:
        return _report(exc)
    except PermissionError as exc:
        _err(f"error: {exc.filename}: permission denied (run as root, or pass --root DIR)")
        return EXIT_ENVIRONMENT
    except OSError as exc:  # a full or read-only disk under the state or config files
        # A failed write() names no file; the state directory is where the service writes.
        where = exc.filename or (settings.paths.state if settings else args.root)
        _err(f"error: {where}: {exc.strerror or exc}")
        _err(f"hint: {_os_error_hint(exc)}")
        return EXIT_ENVIRONMENT


def _os_error_hint(exc: OSError) -> str:
    """What to do about an ``OSError`` no command named itself (pure)."""
    if exc.errno == errno.ENOTDIR:
        return "a file stands where the path needs a directory: move it away (or check --root)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, None):
        return _FULL_DISK_HINT
    return "check the disk holding it (`dmesg`) and its permissions"


if __name__ == "__main__":
    sys.exit(main())
