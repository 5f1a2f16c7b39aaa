"""Releases: the Flux config bundle, release manifests, their checks and publishing; what a
built ISO is handed over with (SBOM, signed SHA256SUMS) and `verify_iso` that checks it.

The public names load on first use (PEP 562): `isobuild build` imports `release.sbom` and
`release.signing` only, and importing `publish` eagerly pulled in oras, jsonschema and its
format grammars, a second of every build's start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from isobuild.release.bundle import build_bundle
    from isobuild.release.publish import publish_release
    from isobuild.release.render import render_release
    from isobuild.release.verify_iso import VerifyReport, verify_iso

__all__ = ["VerifyReport", "build_bundle", "publish_release", "render_release", "verify_iso"]

_HOMES = {
    "build_bundle": "bundle",
    "publish_release": "publish",
    "render_release": "render",
    "VerifyReport": "verify_iso",
    "verify_iso": "verify_iso",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
