"""Flux's install.yaml: which controller images it deploys, and whether the lock pins them.

The release install.yaml deploys every Flux controller (source, kustomize, helm,
notification, and the image automation ones), not only the four ``flux install`` picks by
default. Each image it names must be in the controller image archive, or that controller
would pull from the internet at first boot (the appliance has none).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from isobuild.artifacts.lockfile import PayloadLock
from isobuild.config import yaml_error
from isobuild.errors import PayloadError, VerificationError


def _containers(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    spec = document.get("spec") or {}
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    for key in ("initContainers", "containers"):
        yield from pod.get(key) or []


def referenced_images(text: str, *, source: str = "install.yaml") -> dict[str, tuple[str, str]]:
    """Deployment name → (repository, tag) of its image, for every workload in ``text``."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise PayloadError(yaml_error(source, exc)) from exc
    found: dict[str, tuple[str, str]] = {}
    for document in documents:
        if document.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        name = str((document.get("metadata") or {}).get("name", "?"))
        for container in _containers(document):
            reference = str(container.get("image", "")).partition("@")[0]
            repository, colon, tag = reference.rpartition(":")
            if not colon or "/" in tag:
                raise PayloadError(f"{source}: {name}: image {reference!r} has no tag")
            found[name] = (repository, tag)
    return found


def check_images_pinned(lock: PayloadLock, install_yaml: Path) -> None:
    """Refuse an install.yaml (the cached file) that deploys an image the lock does not pin."""
    try:
        text = install_yaml.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise PayloadError(
            f"{install_yaml}: cannot read Flux's install.yaml: {exc.strerror}"
        ) from exc
    pinned = {(image.repository, image.tag) for image in lock.images}
    missing = sorted(
        f"{name} ({repository}:{tag})"
        for name, (repository, tag) in referenced_images(text, source=str(install_yaml)).items()
        if (repository, tag) not in pinned
    )
    if missing:
        raise VerificationError(
            f"{install_yaml}: Flux's install.yaml deploys images that flux.images in "
            f"{lock.source} does not pin: " + ", ".join(missing),
            hint="pin them (`isobuild lock --update` pins every image install.yaml names); "
            "otherwise they would be pulled from the internet at first boot",
        )
