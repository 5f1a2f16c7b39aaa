"""Where isobuild keeps its cache: $XDG_CACHE_HOME/isobuild unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "isobuild"
