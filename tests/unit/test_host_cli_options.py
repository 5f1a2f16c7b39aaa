"""``python3 -m host_service``'s options: one a command does not take is refused before the
command does anything (a --dry-run that reset-token ignored rotated the token)."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_service.__main__ import _not_for, _parser, main


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        (["reset-token", "--dry-run"], "--dry-run is for reset-data, not reset-token"),
        (["serve", "--dry-run"], "--dry-run is for reset-data, not serve"),
        (["--yes"], "--yes is for reset-data, not serve"),
        (["repair-release", "--yes"], "--yes is for reset-data, not repair-release"),
        (["--output", "b.tar.gz"],
         "--output is for support-bundle or collect-support-bundle, not serve"),
        (["reset-data", "--journal-hours", "3"],
         "--journal-hours is for support-bundle or collect-support-bundle, not reset-data"),
        (["support-bundle", "--listen", ":8081"], "--listen is for serve, not support-bundle"),
        (["console-banner", "--journal-socket", "/run/x"],
         "--journal-socket is for support-bundle, collect-support-bundle, reset-data or "
         "repair-release, not console-banner"),
    ],
)  # fmt: skip
def test_an_option_the_command_does_not_take_is_refused_and_nothing_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], refused: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--root", str(tmp_path)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"python3 -m host_service: error: {refused}"
    assert list(tmp_path.iterdir()) == []  # no state directory, no token


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--listen", "127.0.0.1:8081", "--debug"],
        ["serve", "--listen", ":8081", "--root", "/srv/x", "--settings", "/srv/b.json"],
        ["reset-data", "--dry-run", "--yes", "--journal-socket", "/run/x"],
        ["support-bundle", "--output", "b.tar.gz", "--max-size-mb", "5",
         "--cluster-seconds", "10", "--journal-hours", "2", "--journal-socket", "/run/x"],
        ["collect-support-bundle", "--output", "b.tar.gz"],
        ["repair-release", "--journal-socket", "/run/x"],
        ["reset-token", "--root", "/srv/x"],
        ["console-banner", "--settings", "/srv/b.json"],
        # Given with its default value: nothing is ignored that would change anything.
        ["reset-token", "--max-size-mb", "50"],
    ],
)  # fmt: skip
def test_the_options_each_command_takes_pass(argv: list[str]) -> None:
    parser = _parser()
    assert _not_for(parser, parser.parse_args(argv)) is None
