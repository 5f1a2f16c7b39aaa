"""Boot suite wiring: where serial consoles are kept for a failed run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="session")
def boot_logs() -> Path:
    """Serial consoles of every boot, kept after the run (gitignored)."""
    path = PROJECT_ROOT / "test-artifacts" / "boot"
    path.mkdir(parents=True, exist_ok=True)
    return path
