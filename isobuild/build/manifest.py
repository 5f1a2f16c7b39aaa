"""build-manifest.json: what went into an ISO and what came out (no times, no host paths)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class FileRecord:
    path: str
    sha256: str
    size: int
    action: str  # "added" | "changed"


def render(
    *,
    name: str,
    version: str,
    base: Mapping[str, Any],
    config: Mapping[str, Any],
    output: Mapping[str, Any],
    files: Sequence[FileRecord],
    tools: Mapping[str, str],
    source_date_epoch: int,
    extra: Mapping[str, Any],
    efi_binaries: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The manifest as stable JSON text (sorted keys, files by path) (pure)."""
    document = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "output": dict(output),
        "base_iso": dict(base),
        "config": dict(config),
        "source_date_epoch": source_date_epoch,
        "files": [
            {"path": f.path, "sha256": f.sha256, "size": f.size, "action": f.action}
            for f in sorted(files, key=lambda f: f.path)
        ],
        "tools": dict(tools),
        "extra": dict(extra),
        # The UEFI boot chain, kept byte for byte from the base (efi_chain): where each
        # binary is, its sha256, Authenticode signers and SBAT.
        "efi_binaries": [dict(b) for b in efi_binaries],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
