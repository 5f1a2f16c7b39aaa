"""The support subcommands of ``python3 -m host_service``: progress on stdout, one error line
and a hint on stderr, what was done in the journal (syslog, which journald keeps)."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
import time
from pathlib import Path

from host_service.runtime import real_runtime
from host_service.settings import Settings
from host_service.support.bundle import Limits, build_bundle, new_bundle_path, prune
from host_service.support.cluster import LogLimits

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


def log_to_journal(command: str, socket: Path = JOURNAL_SOCKET) -> None:
    """Send what the command does to syslog (journald keeps it as ``host_service``)."""
    if journal_log.handlers:
        return
    try:
        handler = logging.handlers.SysLogHandler(address=str(socket))
    except OSError as exc:
        sys.stderr.write(f"note: {socket}: {exc.strerror or exc}; not logging to the journal\n")
        return
    handler.setFormatter(logging.Formatter(f"host_service[{command}]: %(message)s"))
    journal_log.addHandler(handler)
    journal_log.setLevel(logging.INFO)


def support_bundle(settings: Settings, args: argparse.Namespace) -> int:
    if args.max_size_mb < 1:
        sys.stderr.write("error: --max-size-mb: at least 1\n")
        return 2
    limits = Limits(
        max_bytes=args.max_size_mb * MiB,
        cluster_seconds=max(1.0, args.cluster_seconds),
        journal_hours=args.journal_hours,
        logs=LogLimits(),
    )
    now = time.time()
    output: Path | None = args.output
    if output is None:
        output = new_bundle_path(settings, now)
    elif output.is_dir():
        output = output / new_bundle_path(settings, now).name
    say(
        f"collecting a support bundle (cluster parts at most {limits.cluster_seconds:g} s, "
        f"size at most {args.max_size_mb} MB)"
    )
    runtime = real_runtime(settings)
    result = build_bundle(
        settings, kube=runtime.kube, journal=runtime.journal, output=output, limits=limits
    )
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
