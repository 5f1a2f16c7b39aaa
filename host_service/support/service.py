"""Support bundles made by the running service: one at a time, kept in ``<state>/support``."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from host_service.errors import ServiceError
from host_service.runtime import Runtime
from host_service.settings import Settings
from host_service.support.bundle import (
    BundleResult,
    Limits,
    build_bundle,
    bundle_dir,
    list_bundles,
    new_bundle_path,
    prune,
)

NAME = re.compile(r"support-bundle-[0-9]{8}-[0-9]{6}(-[0-9]+)?\.tar\.gz")


class BundleBusy(ServiceError):
    """Another bundle is being collected right now."""


class SupportBundles:
    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.limits = limits or Limits()
        self.clock = clock
        self._lock = threading.Lock()

    def create(self) -> BundleResult:
        """Collect a new bundle (minutes at most, bounded by ``limits``)."""
        if not self._lock.acquire(blocking=False):
            raise BundleBusy(
                "a support bundle is being collected right now",
                hint="wait for it to finish, then download it from the list",
            )
        try:
            result = build_bundle(
                self.settings,
                kube=self.runtime.kube,
                journal=self.runtime.journal,
                output=new_bundle_path(self.settings, self.clock()),
                limits=self.limits,
                clock=self.clock,
            )
            prune(self.settings)
            return result
        finally:
            self._lock.release()

    def find(self, name: str) -> Path | None:
        """The kept bundle called ``name`` (names are checked: no path ever comes from a user)."""
        if not NAME.fullmatch(name):
            return None
        path = bundle_dir(self.settings) / name
        return path if path.is_file() else None

    def listing(self) -> list[dict[str, object]]:
        return [
            {"name": p.name, "size": p.stat().st_size, "created_at": p.stat().st_mtime}
            for p in list_bundles(self.settings)
        ]
