"""Test-suite wiring: markers by directory, tool requirements, the fixture cache."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS_DIR.parent

# Every module in tests/fixtures/ is a plugin: shared fixtures live there, one per concern.
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (TESTS_DIR / "fixtures").glob("*.py")
    if p.stem != "__init__"
)

_MARK_BY_DIR = {
    "unit": "unit",
    "integration": "integration",
    "boot": "boot",
    "system": "system",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(TESTS_DIR).parts
        mark = _MARK_BY_DIR.get(parts[0]) if parts else None
        if mark is not None:
            item.add_marker(getattr(pytest.mark, mark))


def unavailable(message: str) -> NoReturn:
    """Skip on a laptop, fail in CI (CI=true): for anything a test needs but cannot get."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str, package: str | None = None) -> str:
    """Path of ``name``; a missing tool skips on a laptop but fails in CI (CI=true)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not installed (apt-get install {package or name})")
    return path


def require_root(why: str) -> None:
    """Skip unless running as root (on a laptop); in CI (CI=true) not being root fails."""
    if os.geteuid() != 0:
        unavailable(f"needs root: {why}")


def require_module(name: str, package: str) -> ModuleType:
    """The module ``name``; a missing one skips on a laptop but fails in CI (CI=true)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(f"{name} not importable (pip install {package}; it is in the test extras)")


@pytest.fixture(scope="session")
def fixture_cache() -> Path:
    """Where built fixtures (stand-in ISOs, rootfs, artifacts) are cached between runs."""
    root = Path(os.environ.get("ISOBUILD_TEST_CACHE", PROJECT_ROOT / ".cache" / "test-fixtures"))
    root.mkdir(parents=True, exist_ok=True)
    return root
