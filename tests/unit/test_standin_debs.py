"""The stand-in's Debian package pins: parsing, apt-cache show, the file's round trip."""

from __future__ import annotations

import pytest

from isobuild.errors import ConfigError, EnvironmentProblem
from isobuild.standin.debs import (
    PINS_FILE,
    ROLES,
    load_pins,
    parse_pins,
    pin_from_apt_show,
    render_pins,
)

SHOW = """Package: grub-efi-amd64-signed
Version: 1+2.06+13+deb12u2
Depends: grub-efi-amd64-bin (= 2.06-13+deb12u2)
Description-md5: 0123
 a continuation line: with a colon
SHA256: fbe2b28166a6dca8111bbf6a30d52d4781973c3a0440d8080f901e039b1f83f2

Package: grub-efi-amd64-signed
Version: 1+2.06+13+deb12u1
SHA256: 009cf7628c0b6cf1f4472df8b9bf5db603028185db63670686d5b985c4f4bc9d
"""


def test_the_committed_pins_are_complete_and_valid() -> None:
    pins = load_pins()
    assert sorted(pins) == sorted(ROLES)
    assert pins["kernel"].package.startswith("linux-image-6.")
    assert pins["shim"].package == "shim-signed"


def test_apt_cache_show_gives_the_first_stanzas_version_and_digest() -> None:
    pin = pin_from_apt_show("grub", "grub-efi-amd64-signed", SHOW)
    assert pin.version == "1+2.06+13+deb12u2"
    assert pin.sha256.startswith("fbe2b281")
    assert pin.filename == "grub-efi-amd64-signed_1+2.06+13+deb12u2_amd64.deb"


def test_apt_cache_show_without_the_package_says_run_apt_get_update() -> None:
    with pytest.raises(EnvironmentProblem) as exc:
        pin_from_apt_show("shim", "shim-signed", "")
    assert "apt-get update" in (exc.value.hint or "")


def test_render_then_parse_is_the_same_pins_and_keeps_the_comment() -> None:
    pins = load_pins()
    text = render_pins(pins, "# header\n")
    assert text.startswith("# header\n")
    assert parse_pins(text, "x") == pins
    assert parse_pins(PINS_FILE.read_text(), "x") == pins


def test_every_problem_is_named_at_once() -> None:
    text = "kernel: {package: k, version: '1', sha256: ABC}\nshim: 3\nextra: {}\n"
    with pytest.raises(ConfigError) as exc:
        parse_pins(text, "pins.yaml")
    message = str(exc.value)
    for expected in ("kernel.sha256", "shim: missing", "grub: missing", "extra: unknown role"):
        assert expected in message
