"""Unit tests are pure: any attempt to start a process fails the test."""

from __future__ import annotations

import subprocess
from typing import Any, NoReturn

import pytest


@pytest.fixture(autouse=True)
def _no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"unit tests must not start processes: {args[:1]!r}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
