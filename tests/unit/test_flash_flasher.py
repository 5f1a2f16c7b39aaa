"""The flash sequence on image files: the ISO is checked, the prompt decides, nothing partial."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from isobuild.errors import ConfigError, ExitCode, FlashError, SourceIsoError, VerificationError
from isobuild.flash.flasher import Flash, FlashRequest, Phase, require_terminal
from isobuild.iso.magic import OFFSET as MAGIC_OFFSET

SIZE = 3 << 20


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    """Bytes with an ISO 9660 volume descriptor where one belongs, and their .sha256."""
    data = bytearray(os.urandom(SIZE))
    data[MAGIC_OFFSET : MAGIC_OFFSET + 5] = b"CD001"
    path = tmp_path / "app.iso"
    path.write_bytes(data)
    (tmp_path / "app.iso.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  app.iso\n")
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "stick.img"
    path.write_bytes(os.urandom(SIZE + (1 << 20)))
    return path


def test_declining_the_prompt_writes_nothing(iso: Path, image: Path) -> None:
    before = image.read_bytes()
    asked: list[list[str]] = []

    def decline(lines: list[str]) -> bool:
        asked.append(lines)
        return False

    job = Flash(FlashRequest(iso=iso, target=image, quiet=True))
    with pytest.raises(FlashError, match="not confirmed: nothing was written"):
        job.run(decline)
    assert asked == [[f"{image}: image file, 4.0 MiB"]]
    assert job.phase is Phase.CHECKING
    assert image.read_bytes() == before


def test_confirmed_writes_and_verifies(iso: Path, image: Path) -> None:
    job = Flash(FlashRequest(iso=iso, target=image, quiet=True))
    result = job.run(lambda lines: True)
    assert job.phase is Phase.DONE
    assert result.image.source == str(iso.with_name("app.iso.sha256"))
    assert image.read_bytes()[:SIZE] == iso.read_bytes()
    assert Flash(FlashRequest(iso=iso, target=image, quiet=True)).verify().bytes == SIZE


def test_a_wrong_digest_stops_before_the_prompt(iso: Path, image: Path) -> None:
    asked: list[list[str]] = []
    job = Flash(FlashRequest(iso=iso, target=image, sha256="A" * 64, quiet=True))
    with pytest.raises(VerificationError) as caught:
        job.run(lambda lines: asked.append(lines) or True)
    assert caught.value.exit_code == ExitCode.INPUT
    assert caught.value.message.endswith("(--sha256), got " + _sha(iso) + ": nothing was written")
    assert asked == []


def test_without_a_sha256_file_the_iso_cannot_be_verified(iso: Path, image: Path) -> None:
    iso.with_name("app.iso.sha256").unlink()
    with pytest.raises(VerificationError, match=r"app\.iso\.sha256: not found, and no --sha256"):
        Flash(FlashRequest(iso=iso, target=image, quiet=True)).run(None)


def test_a_file_that_is_no_iso_is_refused(tmp_path: Path, image: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_bytes(b"x" * 40000)
    with pytest.raises(SourceIsoError, match="not an ISO 9660 image"):
        Flash(FlashRequest(iso=other, target=image, sha256="0" * 64, quiet=True)).run(None)


def test_verify_catches_a_changed_byte(iso: Path, image: Path) -> None:
    Flash(FlashRequest(iso=iso, target=image, quiet=True)).run(None)
    with image.open("r+b") as handle:
        handle.seek(SIZE - 1)
        last = handle.read(1)
        handle.seek(SIZE - 1)
        handle.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(FlashError, match="verify failed") as caught:
        Flash(FlashRequest(iso=iso, target=image, quiet=True)).verify()
    assert caught.value.exit_code == ExitCode.FAILURE


def test_an_iso_written_to_after_its_check_fails_the_flash(iso: Path, image: Path) -> None:
    """The read-back compares with the ISO's bytes: only the file that was hashed will do."""

    def grow_then_confirm(lines: list[str]) -> bool:
        with iso.open("ab") as handle:  # its first SIZE bytes stay what was hashed
            handle.write(b"\0")
        return True

    job = Flash(FlashRequest(iso=iso, target=image, quiet=True))
    with pytest.raises(VerificationError, match="the ISO changed since its sha256 was checked"):
        job.run(grow_then_confirm)
    assert job.phase is Phase.VERIFYING  # written, not verified: the CLI says so
    assert image.read_bytes()[:SIZE] == iso.read_bytes()[:SIZE]


def test_verify_reports_the_first_differing_sector(iso: Path, image: Path) -> None:
    Flash(FlashRequest(iso=iso, target=image, quiet=True)).run(None)
    with image.open("r+b") as handle:
        handle.seek(5000)
        byte = handle.read(1)
        handle.seek(5000)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(FlashError, match=r"verify failed: byte 5000 \(sector 9\) differs"):
        Flash(FlashRequest(iso=iso, target=image, quiet=True)).verify()


def test_no_terminal_needs_yes() -> None:
    with pytest.raises(ConfigError, match="stdin is not a terminal"):
        require_terminal(False, False, Path("/dev/sdb"))
    require_terminal(True, False, Path("/dev/sdb"))
    require_terminal(False, True, Path("/dev/sdb"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
