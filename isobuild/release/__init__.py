"""Releases: the Flux config bundle, release manifests, their checks and publishing; what a
built ISO is handed over with (SBOM, signed SHA256SUMS) and `verify_iso` that checks it."""

from isobuild.release.bundle import build_bundle
from isobuild.release.publish import publish_release
from isobuild.release.render import render_release
from isobuild.release.verify_iso import VerifyReport, verify_iso

__all__ = ["VerifyReport", "build_bundle", "publish_release", "render_release", "verify_iso"]
