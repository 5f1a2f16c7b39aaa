"""isobuild.templates: the one jinja environment autoinstall/ and overlays/ render with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from isobuild.errors import ConfigError
from isobuild.templates import Templates


def test_templates_are_strict_unescaped_and_keep_the_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "unit.j2").write_text("ExecStart={{ cmd }} <&> '{{ cmd }}'\n")
    assert Templates(tmp_path).render("sub/unit.j2", {"cmd": "a&b"}, hint="h") == (
        "ExecStart=a&b <&> 'a&b'\n"
    )


def test_an_undefined_name_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.j2").write_text("first\n{{ missing.key }}\n")
    with pytest.raises(ConfigError) as caught:
        Templates(tmp_path).render("x.j2", {}, hint="say what to fix")
    assert caught.value.message.startswith(f"{tmp_path / 'x.j2'}")
    assert "template error" in caught.value.message
    assert "'missing' is undefined" in caught.value.message
    assert caught.value.hint == "say what to fix"


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "y.j2").write_text("ok\n{% if %}\n")
    with pytest.raises(
        ConfigError, match=rf"^{re.escape(str(tmp_path / 'y.j2'))}:2: template error"
    ):
        Templates(tmp_path).render("y.j2", {}, hint="h")
