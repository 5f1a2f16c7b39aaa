"""Unit tests are pure: any attempt to start a process fails the test."""

from __future__ import annotations

import locale
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest


@pytest.fixture(autouse=True)
def _no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"unit tests must not start processes: {args[:1]!r}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """The process's locale encoding as on a host whose locale is plain C (ASCII): a file
    read without an explicit encoding fails on its first non-ASCII byte."""
    if sys.flags.utf8_mode:
        pytest.skip("Python's UTF-8 mode reads every file as UTF-8 whatever the locale")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
