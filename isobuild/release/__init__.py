"""Releases: the Flux config bundle, release manifests, their checks and publishing."""

from isobuild.release.bundle import build_bundle
from isobuild.release.publish import publish_release
from isobuild.release.render import render_release

__all__ = ["build_bundle", "publish_release", "render_release"]
