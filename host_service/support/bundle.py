"""The support bundle: what support asks for first, from the UI or ``support-bundle``.

Collect (the cluster in its own thread under a deadline, the host meanwhile), build the
redactor from every secret the appliance knows, then write one size-bounded ``.tar.gz``
atomically at 0600 with a manifest of every file.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from host_service import atomic, command
from host_service.kube import Kube
from host_service.settings import Settings
from host_service.support.archive import BundleWriter, Item
from host_service.support.cluster import PLANNED, ClusterCollector, LogLimits
from host_service.support.host_facts import appliance_items, host_items, journal_items
from host_service.support.inventory import host_secrets
from host_service.support.journal import Journal
from host_service.support.redact import SHAPES, Redactor

log = logging.getLogger(__name__)

SCHEMA = "alga.appliance.support-bundle/v1"
PREFIX = "support-bundle"
KEEP = 5  # bundles kept in <state>/support
# The names new_bundle_path gives: the second bundle of one second is -2, the tenth -10.
NAME = re.compile(rf"{PREFIX}-([0-9]{{8}}-[0-9]{{6}})(?:-([0-9]+))?\.tar\.gz")
MiB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_bytes: int = 50 * MiB
    cluster_seconds: float = 90.0  # the whole cluster part, however many calls it makes
    journal_hours: float = 24.0
    journal_bytes: int = 8 * MiB  # per unit
    logs: LogLimits = field(default_factory=LogLimits)


@dataclass(frozen=True)
class BundleResult:
    path: Path
    size: int
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name


def bundle_dir(settings: Settings) -> Path:
    return settings.paths.state / "support"


def default_name(now: float) -> str:
    return f"{PREFIX}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}.tar.gz"


def _made(name: str) -> tuple[str, int] | None:
    """When a bundle called ``name`` was made: its time, then its number in that second."""
    match = NAME.fullmatch(name)
    return (match[1], int(match[2] or 1)) if match else None


def list_bundles(settings: Settings) -> list[Path]:
    """Bundles kept in ``<state>/support``, newest first (by the time and number in their
    names: ``-HHMMSS-2`` is newer than ``-HHMMSS``, ``-10`` newer than ``-2``)."""
    found = {
        p: made
        for p in bundle_dir(settings).glob(f"{PREFIX}-*.tar.gz")
        if (made := _made(p.name)) is not None and p.is_file()
    }
    return sorted(found, key=found.__getitem__, reverse=True)


def _collect_cluster(collector: ClusterCollector, seconds: float) -> tuple[bool, float]:
    """Run ``collector`` for at most ``seconds``; True when it finished in time."""
    children = command.Children()
    started = time.monotonic()

    def work() -> None:
        with command.tracking(children):
            try:
                collector.run()
            except Exception as exc:  # a bug must not cost the rest of the bundle
                log.exception("support bundle: the cluster collection failed")
                collector.error = collector.error or f"internal error: {exc!r}"

    thread = threading.Thread(target=work, name="support-bundle-cluster", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        collector.cancelled.set()
        children.stop(2.0)  # ends the kubectl call that hangs
        thread.join(2.0)
    return not collector.cancelled.is_set(), time.monotonic() - started


def _cluster_status(collector: ClusterCollector, finished: bool, seconds: float) -> dict[str, Any]:
    if not finished:
        why = (
            f"the API did not answer within {seconds:.0f} s"
            if collector.reachable is None
            else f"the time bound of {seconds:.0f} s was reached"
        )
        return {"reachable": collector.reachable, "error": why, "complete": False}
    if collector.reachable is False:
        return {"reachable": False, "error": collector.error, "complete": False}
    return {"reachable": True, "error": collector.error, "complete": collector.error is None}


def _missing_cluster_items(collector: ClusterCollector, status: dict[str, Any]) -> list[Item]:
    why = (
        f"the Kubernetes API is not reachable: {status['error']}"
        if status["reachable"] is False
        else f"not collected: {status['error']}"
    )
    return [
        Item(path, "kubectl (k3s kubectl)", skipped=why)
        for path in PLANNED
        if path not in collector.done
    ]


def build_bundle(
    settings: Settings,
    *,
    kube: Kube,
    journal: Journal,
    output: Path,
    limits: Limits = Limits(),
    proc: Path = Path("/proc"),
    clock: Callable[[], float] = time.time,
    extra_secrets: Iterable[str | bytes] = (),
) -> BundleResult:
    """Collect and write the bundle to ``output`` (atomically, 0600)."""
    started = clock()
    collector = ClusterCollector(kube, settings, limits.logs)
    result: list[tuple[bool, float]] = []
    cluster = threading.Thread(
        target=lambda: result.append(_collect_cluster(collector, limits.cluster_seconds)),
        daemon=True,
    )
    cluster.start()
    local = [
        *host_items(settings, proc),
        *appliance_items(settings),
        *journal_items(journal, hours=limits.journal_hours, max_bytes=limits.journal_bytes),
    ]
    cluster.join()
    finished, spent = result[0] if result else (False, limits.cluster_seconds)
    status = _cluster_status(collector, finished, limits.cluster_seconds)
    redactor = Redactor([*host_secrets(settings), *collector.secrets, *extra_secrets])
    # Small, most telling files first; logs and journals last, so a size cut takes those.
    items = sorted(
        [*local, *list(collector.items), *_missing_cluster_items(collector, status)],
        key=lambda i: (i.path.startswith(("logs/", "journal/")), i.path),
    )
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    with atomic.replacing(output, mode=0o600) as out:
        writer = BundleWriter(
            out=out,
            redactor=redactor,
            max_bytes=limits.max_bytes,
            prefix=f"{PREFIX}-{stamp}",
            mtime=started,
        )
        for item in items:
            writer.put(item)
        manifest = writer.close(
            {
                "schema": SCHEMA,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "host": socket.gethostname(),
                "build": dict(settings.build),
                "cluster": {**status, "seconds": round(spent, 1)},
                "limits": {**asdict(limits), "logs": asdict(limits.logs)},
                "redaction": {
                    "structural": [
                        "Secret data and stringData (sizes only)",
                        "HelmRelease inline values",
                        "secret-named container env values",
                        "last-applied-configuration annotations",
                        "secret-named keys in YAML/JSON files",
                        "never read: setup token, session key, setup inputs, kubeconfig "
                        "credentials, earlier bundles",
                    ],
                    "known_values": redactor.known,
                    "shapes": [name for name, _, _ in SHAPES],
                },
                "seconds": round(clock() - started, 1),
            }
        )
    size = output.stat().st_size
    log.info("support bundle written: %s (%d bytes)", output, size)
    return BundleResult(output, size, manifest)


def prune(settings: Settings, keep: int = KEEP) -> None:
    """Keep the newest ``keep`` bundles in ``<state>/support``."""
    for old in list_bundles(settings)[keep:]:
        old.unlink(missing_ok=True)


def free_bundle_path(directory: Path, now: float) -> Path:
    """The default name for a bundle made at ``now`` in ``directory``, with a suffix when a
    file there has it already (a second bundle in the same second: ``-2``)."""
    path = directory / default_name(now)
    n = 1
    while path.exists():
        n += 1
        path = directory / default_name(now).replace(".tar.gz", f"-{n}.tar.gz")
    return path


def new_bundle_path(settings: Settings, now: float) -> Path:
    """A fresh name in ``<state>/support``, made here (0700) if missing."""
    directory = bundle_dir(settings)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    return free_bundle_path(directory, now)
