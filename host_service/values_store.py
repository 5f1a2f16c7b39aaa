"""The rendered values, kept under ``<state>/values/``: the values step renders them once and
writes them here; the apply step applies what is here and never renders again.

An index (``rendered.json``) says what they were rendered from (release manifest digest,
app URL, workloads namespace) and the sha256 of each file, so a reader can tell values for
this run from stale or damaged ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from host_service import atomic
from host_service.intent import SetupIntent
from host_service.resolution import Resolution
from host_service.settings import Settings

INDEX = "rendered.json"


@dataclass(frozen=True)
class RenderedFrom:
    """What the values were rendered from: a change in any of these means render again."""

    manifest_digest: str
    app_url: str
    workloads: str

    @classmethod
    def of(cls, resolved: Resolution, intent: SetupIntent, settings: Settings) -> RenderedFrom:
        return cls(
            manifest_digest=resolved.manifest_digest,
            app_url=intent.app_url,
            workloads=settings.namespaces.workloads,
        )


def _path(directory: Path, service: str) -> Path:
    return directory / f"{service}.yaml"


def write(directory: Path, source: RenderedFrom, values: Mapping[str, str]) -> None:
    """Store ``values`` (service -> values.yaml text), files first, the index last."""
    for service, text in values.items():
        atomic.write_text(_path(directory, service), text, mode=0o600)
    index = {
        "from": asdict(source),
        "services": {
            service: hashlib.sha256(text.encode("utf-8")).hexdigest()
            for service, text in values.items()
        },
    }
    atomic.write_json(directory / INDEX, index, mode=0o600)


def read(directory: Path, source: RenderedFrom) -> dict[str, str] | None:
    """The stored values when they were rendered from ``source`` and are intact, else None.

    Services come back in the order they were written (the release's dependency order).
    """
    try:
        index = json.loads((directory / INDEX).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("from") != asdict(source):
        return None
    services = index.get("services")
    if not isinstance(services, dict):
        return None
    values: dict[str, str] = {}
    for service, sha256 in services.items():
        try:
            text = _path(directory, service).read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != sha256:
            return None
        values[service] = text
    return values
