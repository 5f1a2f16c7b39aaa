"""Pinned upstream artifacts: the lock file, its update, fetching, the cache, image archives."""

from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.fetch import Fetcher, make_source
from isobuild.artifacts.lockfile import PayloadLock, load_lock

__all__ = ["ArtifactCache", "Fetcher", "PayloadLock", "load_lock", "make_source"]
