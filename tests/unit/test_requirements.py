"""tests/conftest.py: a missing prerequisite skips on a laptop and fails in CI (CI=true)."""

from __future__ import annotations

import pytest

from tests.conftest import require_tool, unavailable


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_unavailable_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match=r"^real target: no ISO$"):
        unavailable("real target: no ISO")


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_unavailable_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=r"^real target: no ISO$"):
        unavailable("real target: no ISO")


def test_a_missing_tool_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(
        pytest.fail.Exception, match=r"no-such-tool not installed \(apt-get install pkg\)"
    ):
        require_tool("no-such-tool", "pkg")
