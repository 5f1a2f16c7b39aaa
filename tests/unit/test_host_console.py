"""The console banner: a managed /etc/issue block with every address and the token."""

from __future__ import annotations

from pathlib import Path

from host_service import console

ISSUE = "Ubuntu 24.04.1 LTS \\n \\l\n\n"


def test_block_lists_every_address_and_the_token() -> None:
    block = console.render_block(["192.0.2.10", "2001:db8::10"], port=8080, token="AAAA-BBBB")
    assert "http://192.0.2.10:8080/" in block
    assert "http://[2001:db8::10]:8080/" in block
    assert "Setup token:  AAAA-BBBB" in block
    assert block.startswith(console.BEGIN)
    assert block.rstrip().endswith(console.END)
    assert "\\" not in block  # agetty would expand it


def test_block_after_reconcile_shows_the_app_url() -> None:
    block = console.render_block(
        ["192.0.2.10"], port=8080, token="T", app_url="https://psa.example.com"
    )
    assert "Application:  https://psa.example.com" in block


def test_no_address_says_so() -> None:
    assert "no network address" in console.render_block([], port=8080, token="T")


def test_replace_keeps_the_rest_and_is_idempotent() -> None:
    one = console.render_block(["192.0.2.10"], port=8080, token="ONE")
    two = console.render_block(["192.0.2.11"], port=8080, token="TWO")
    first = console.replace_block(ISSUE, one)
    assert first.startswith(ISSUE)
    assert one in first
    assert console.replace_block(first, one) == first
    second = console.replace_block(first, two)
    assert "ONE" not in second
    assert two in second
    assert second.startswith(ISSUE)
    assert second.count(console.BEGIN) == 1


def test_refresh_writes_only_on_change(tmp_path: Path) -> None:
    issue = tmp_path / "etc/issue"
    issue.parent.mkdir()
    issue.write_text(ISSUE)
    kwargs = {"addresses": ["192.0.2.10"], "port": 8080, "token": "T", "app_url": None}
    assert console.refresh(issue, reload_getty=False, **kwargs)  # type: ignore[arg-type]
    assert not console.refresh(issue, reload_getty=False, **kwargs)  # type: ignore[arg-type]
    assert issue.stat().st_mode & 0o777 == 0o644
    assert issue.read_text().startswith(ISSUE)


def test_app_url_comes_from_the_recorded_selection(tmp_path: Path) -> None:
    selection = tmp_path / "release-selection.json"
    assert console.app_url_if_live(selection) is None
    selection.write_text('{"app_url": "https://psa.example.com"}')
    assert console.app_url_if_live(selection) == "https://psa.example.com"
