"""The support subcommands of ``python3 -m host_service``: progress on stdout, one error line
and a hint on stderr, what was done in the journal (syslog, which journald keeps)."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import math
import os
import sys
import time
from pathlib import Path
from typing import IO

from host_service import lock
from host_service.command import CommandError
from host_service.errors import AlreadyRunning, HostNotReady, InvalidInput, ServiceError
from host_service.intent import IntentStore
from host_service.kube import KubeError
from host_service.runtime import real_runtime
from host_service.settings import Settings
from host_service.steps.context import StepFailed
from host_service.support.bundle import (
    Limits,
    build_bundle,
    free_bundle_path,
    new_bundle_path,
    prune,
)
from host_service.support.cluster import LogLimits
from host_service.support.repair import NothingToRepair, repair_release
from host_service.support.reset import CONFIRMATION, ResetRefused, execute, make_plan
from host_service.worker import redactor

OUTPUT_HINT = "a file, or a directory for the default name"
# Bounds of the time options: beyond them a wait or a journal window means nothing (and a
# thread's join overflows at about 292 years).
MAX_CLUSTER_SECONDS = 24 * 3600.0
MAX_JOURNAL_HOURS = 10 * 365 * 24.0

MiB = 1024 * 1024
JOURNAL_SOCKET = Path("/dev/log")
journal_log = logging.getLogger("host_service.support.audit")


def say(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("support-bundle")
    group.add_argument("--output", type=Path, help="bundle file (default: <state>/support/...)")
    group.add_argument("--max-size-mb", type=int, default=50, help="size bound (default 50)")
    group.add_argument(
        "--cluster-seconds",
        type=float,
        default=90.0,
        help="time bound for the cluster parts (default 90)",
    )
    group.add_argument(
        "--journal-hours", type=float, default=24.0, help="journal window (default 24)"
    )


class _Syslog(logging.handlers.SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        # The journal is a record of what was done, never a reason for the command to fail.
        pass


def log_to_journal(command: str, socket: Path = JOURNAL_SOCKET) -> None:
    """Send what the command does to syslog (journald keeps it as ``host_service``)."""
    if journal_log.handlers:
        return
    if not socket.is_socket():
        sys.stderr.write(f"note: no syslog socket at {socket}; not logging to the journal\n")
        return
    try:
        handler = _Syslog(address=str(socket))
    except OSError as exc:
        sys.stderr.write(f"note: {socket}: {exc.strerror or exc}; not logging to the journal\n")
        return
    handler.setFormatter(logging.Formatter(f"host_service[{command}]: %(message)s"))
    journal_log.addHandler(handler)
    journal_log.setLevel(logging.INFO)
    journal_log.propagate = False  # the commands print their progress themselves


def _out_of_range(option: str, value: float, *, unit: str, most: float) -> str | None:
    """What is wrong with ``value`` unless it is a number above 0 and at most ``most``
    (argparse takes ``nan``, ``inf`` and ``-5`` for a float)."""
    if math.isfinite(value) and 0 < value <= most:
        return None
    return f"{option}: expected a number of {unit} above 0, at most {most:g}, got {value:g}"


def bundle_limits(args: argparse.Namespace) -> Limits:
    """The bundle's limits from the command line; InvalidInput names every option out of
    range (on one line)."""
    problems = [
        f"--max-size-mb: at least 1, got {args.max_size_mb}" if args.max_size_mb < 1 else None,
        _out_of_range(
            "--cluster-seconds", args.cluster_seconds, unit="seconds", most=MAX_CLUSTER_SECONDS
        ),
        _out_of_range("--journal-hours", args.journal_hours, unit="hours", most=MAX_JOURNAL_HOURS),
    ]
    if any(problems):
        raise InvalidInput("; ".join(p for p in problems if p))
    return Limits(
        max_bytes=args.max_size_mb * MiB,
        cluster_seconds=max(1.0, args.cluster_seconds),
        journal_hours=args.journal_hours,
        logs=LogLimits(),
    )


def bundle_output(settings: Settings, output: Path | None, now: float) -> Path:
    """Where the bundle goes: the file named, the default name in the directory named (a
    suffix when that directory has the name already), or ``<state>/support``. The state
    directory is touched only when the bundle goes there (it may be read-only or full)."""
    if output is None:
        return new_bundle_path(settings, now)
    if _is_directory(output):
        return free_bundle_path(output, now)
    return output


def support_bundle(settings: Settings, args: argparse.Namespace) -> int:
    limits = bundle_limits(args)
    output = bundle_output(settings, args.output, time.time())
    _make_directory_for(output)  # before a minute and more of collecting
    say(
        f"collecting a support bundle (cluster parts at most {limits.cluster_seconds:g} s, "
        f"size at most {args.max_size_mb} MB)"
    )
    runtime = real_runtime(settings)
    try:
        result = build_bundle(
            settings, kube=runtime.kube, journal=runtime.journal, output=output, limits=limits
        )
    except OSError as exc:
        if exc.filename != str(output):  # the bundle's own write names it (atomic)
            raise
        raise HostNotReady(
            f"{output}: writing the bundle failed: {exc.strerror}",
            hint=f"free space there, or name another place with --output ({OUTPUT_HINT})",
        ) from None
    if args.output is None:
        prune(settings)
    manifest = result.manifest
    cluster = manifest["cluster"]
    if not cluster.get("complete"):
        say(f"cluster: incomplete: {cluster.get('error') or 'see manifest.json'}")
    failed = manifest["failed"]
    if failed:
        say(f"not collected ({len(failed)}): {', '.join(failed[:8])}")
    for line in manifest["cut"][:8]:
        say(f"cut: {line}")
    say(f"wrote {result.path} ({result.size} bytes, mode 0600)")
    journal_log.info("support bundle written to %s (%d bytes)", result.path, result.size)
    return 0


def _is_directory(output: Path) -> bool:
    try:
        return output.is_dir()
    except OSError as exc:  # a name too long, a loop of links
        raise HostNotReady(
            f"{output}: cannot be looked at ({exc.strerror})",
            hint=f"name another place with --output ({OUTPUT_HINT})",
        ) from None


def _make_directory_for(output: Path) -> None:
    """The bundle's directory, made if missing; one line when it cannot be."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        blocker = next(
            (p for p in (output.parent, *output.parent.parents) if p.exists() and not p.is_dir()),
            output.parent,
        )
        raise InvalidInput(
            f"{output}: {blocker} is not a directory, so the bundle cannot be written there",
            hint=f"name another place with --output ({OUTPUT_HINT})",
        ) from None
    except OSError as exc:
        raise HostNotReady(
            f"{output.parent}: cannot make the bundle's directory ({exc.strerror})",
            hint=f"name another place with --output ({OUTPUT_HINT})",
        ) from None


def add_command_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reset-data and repair-release")
    group.add_argument("--yes", action="store_true", help="reset-data: do not ask to confirm")
    group.add_argument(
        "--dry-run", action="store_true", help="reset-data: list what would go, delete nothing"
    )
    group.add_argument(
        "--journal-socket",
        type=Path,
        default=JOURNAL_SOCKET,
        help="syslog socket the commands log to (default /dev/log, kept by journald)",
    )


def _fail(text: str, hint: str | None = None) -> None:
    sys.stderr.write(f"error: {text}\n" + (f"hint: {hint}\n" if hint else ""))
    journal_log.error("failed: %s", text)


def _locked(settings: Settings) -> IO[str] | None:
    settings.paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return lock.hold(settings.paths.lock_file)
    except AlreadyRunning as exc:
        _fail(str(exc), exc.hint)
        return None


def _confirmed(args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    sys.stdout.write(f"Type {CONFIRMATION} to delete all of the above (anything else cancels): ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.strip() == CONFIRMATION


def reset_data(settings: Settings, args: argparse.Namespace) -> int:
    handle = _locked(settings)
    if handle is None:
        return 4
    with handle:
        runtime = real_runtime(settings)
        try:
            plan = make_plan(settings, runtime.kube)
        except ResetRefused as exc:
            _fail(str(exc), exc.hint)
            return 4
        for line in plan.lines():
            say(line)
        if args.dry_run:
            say("dry run: nothing was deleted")
            return 0
        if not _confirmed(args):
            _fail("not confirmed; nothing was deleted", f"type {CONFIRMATION}, or pass --yes")
            return 3
        journal_log.info("reset-data: started (uid %d)", os.getuid())
        try:
            execute(plan, settings, runtime, say=_logged, sleep=time.sleep)
        except ResetRefused as exc:
            _fail(str(exc), exc.hint)
            return 1
        except KubeError as exc:
            _fail(f"{exc.message}\n{exc.output}", "run reset-data again")
            return 1
    say(
        "done: the appliance is back to freshly installed; the new setup token is on the "
        f"console ({settings.paths.issue})"
    )
    journal_log.info("reset-data: done; the setup token was rotated")
    return 0


def _cli_user() -> str:
    """Who runs the command: the login behind sudo when there is one."""
    user = os.environ.get("SUDO_USER") or os.environ.get("USER") or "?"
    return f"cli ({user}, uid {os.getuid()})"


def _logged(text: str) -> None:
    say(text)
    journal_log.info("%s", text)


def repair(settings: Settings, args: argparse.Namespace) -> int:
    handle = _locked(settings)
    if handle is None:
        return 4
    with handle:
        # Damaged inputs are IntentUnreadable: one line naming the file, exit 2 (__main__).
        intent = IntentStore(settings.paths.intent_file).load()
        redact = redactor(intent) if intent else (lambda text: text)

        def progress(text: str) -> None:
            _logged(redact(text))

        journal_log.info("repair-release: started (uid %d)", os.getuid())
        try:
            version = repair_release(
                settings, real_runtime(settings), say=progress, requested_by=_cli_user()
            )
        except NothingToRepair as exc:
            _fail(str(exc), exc.hint)
            return 4
        except StepFailed as exc:
            _fail(redact(exc.message), redact(exc.next_step))
            sys.stderr.write(f"cause: {redact(exc.cause)}\n")
            if exc.output:
                sys.stderr.write(redact(exc.output).rstrip("\n") + "\n")
            return 1
        except (CommandError, ServiceError) as exc:
            _fail(redact(str(exc)), "read the error, fix the cause, run repair-release again")
            return 1
    _logged(f"done: release {version} is applied again and reconciled")
    return 0
