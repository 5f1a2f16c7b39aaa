"""`isobuild --help` lists every command from the CLI's table, without importing any of them."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner

from isobuild import cli


def _command(name: str) -> click.Command:
    module, attribute = cli.COMMANDS[name].split(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return command


def test_every_command_has_a_summary_and_no_summary_is_orphaned() -> None:
    assert set(cli.SUMMARIES) == set(cli.COMMANDS)


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_summary_shortens_like_the_commands_own_help(name: str) -> None:
    """At every width click may give it, the summary's row reads as the loaded command's."""
    command = _command(name)
    stand_in = click.Command(name, help=cli.SUMMARIES[name])
    for limit in range(10, 260):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), limit


def test_help_lists_every_command_without_importing_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(module: str) -> None:
        raise AssertionError(f"`isobuild --help` imported {module}")

    monkeypatch.setattr(cli.importlib, "import_module", refuse)
    monkeypatch.setattr(cli.main, "commands", {})  # nothing loaded by an earlier test
    result = CliRunner().invoke(cli.main, ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    rows = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [row.split()[0] for row in rows] == sorted(cli.COMMANDS)
    assert "  verify             Check ISO with the files `isobuild build` wrote beside..." in rows


def test_a_loaded_command_is_listed_from_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command added to the group (loaded by an earlier call) is listed with its own help."""
    loaded = click.Command("fetch", help="Loaded. More.")
    monkeypatch.setattr(cli.main, "commands", {"fetch": loaded})
    result = CliRunner().invoke(cli.main, ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "  fetch              Loaded.\n" in result.output
