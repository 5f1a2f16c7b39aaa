"""The ISO flash reads: what it accepts as an ISO, where its digest comes from, and the
checks that it is still the file whose digest was checked."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from isobuild.errors import ConfigError, SourceIsoError, VerificationError
from isobuild.flash.image import Image, check, check_unchanged, identity, open_image

MAGIC_AT = 16 * 2048 + 1
SIZE = 40 * 2048


def _iso(path: Path) -> Path:
    data = bytearray(SIZE)
    data[MAGIC_AT : MAGIC_AT + 5] = b"CD001"
    path.write_bytes(bytes(data))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_digest_comes_from_the_sha256_file_beside_the_iso(tmp_path: Path) -> None:
    iso = _iso(tmp_path / "app.iso")
    digest = _sha256(iso)
    (tmp_path / "app.iso.sha256").write_text(f"{digest}  app.iso\n", encoding="utf-8")
    assert open_image(iso, None) == Image(
        path=iso, size=SIZE, sha256=digest, source=str(tmp_path / "app.iso.sha256")
    )


def test_a_digest_on_the_command_line_wins_and_is_normalized(tmp_path: Path) -> None:
    iso = _iso(tmp_path / "app.iso")
    (tmp_path / "app.iso.sha256").write_text("not read\n", encoding="utf-8")
    digest = _sha256(iso)
    image = open_image(iso, f" {digest.upper()}\n")
    assert (image.sha256, image.source, image.size) == (digest, "--sha256", SIZE)
    with pytest.raises(ConfigError) as caught:
        open_image(iso, "abc")
    assert caught.value.message == "--sha256: expected 64 hex digits, got 'abc'"


def test_without_a_digest_the_iso_cannot_be_verified(tmp_path: Path) -> None:
    iso = _iso(tmp_path / "app.iso")
    sums = tmp_path / "app.iso.sha256"
    with pytest.raises(VerificationError) as caught:
        open_image(iso, None)
    assert (caught.value.message, caught.value.hint) == (
        f"{sums}: not found, and no --sha256 given: the ISO cannot be verified",
        "keep the .sha256 `isobuild build` wrote beside the ISO, or pass --sha256 HEX",
    )
    sums.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(VerificationError, match=rf"^{sums}: cannot read it \('utf-8' codec"):
        open_image(iso, None)
    sums.unlink()
    sums.mkdir()
    with pytest.raises(VerificationError) as caught:
        open_image(iso, None)
    assert caught.value.message == f"{sums}: cannot read it ([Errno 21] Is a directory: '{sums}')"
    sums.rmdir()
    sums.write_text(f"{'0' * 64}  other.iso\n", encoding="utf-8")
    with pytest.raises(
        VerificationError, match=rf"^{sums}: no entry for app.iso \(it lists other.iso\)$"
    ):
        open_image(iso, None)


def test_what_is_not_an_iso_9660_image_is_refused(tmp_path: Path) -> None:
    for name, data in (("zeros.iso", bytes(SIZE)), ("short.iso", b"CD001")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(SourceIsoError) as caught:
            open_image(path, "0" * 64)
        assert (caught.value.message, caught.value.hint) == (
            f"{path}: not an ISO 9660 image (no CD001 volume descriptor at byte 32769)",
            "pass the .iso file `isobuild build` wrote",
        )


def test_a_missing_path_a_directory_or_a_device_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "gone.iso"
    with pytest.raises(SourceIsoError) as caught:
        open_image(missing, None)
    assert (caught.value.message, caught.value.hint) == (
        f"{missing}: ISO not found",
        "check the path",
    )
    with pytest.raises(SourceIsoError) as caught:
        open_image(tmp_path, None)
    assert caught.value.message == f"{tmp_path}: is a directory, expected an ISO image"
    with pytest.raises(SourceIsoError) as caught:
        open_image(Path("/dev/zero"), None)
    assert caught.value.message == "/dev/zero: is not a regular file, expected an ISO image"
    below_a_file = _iso(tmp_path / "app.iso") / "x"
    with pytest.raises(SourceIsoError) as caught:
        open_image(below_a_file, None)
    assert caught.value.message == f"{below_a_file}: cannot read it (Not a directory)"


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    pipe = tmp_path / "app.iso"
    os.mkfifo(pipe)
    caught: list[BaseException] = []

    def attempt() -> None:
        try:
            open_image(pipe, None)
        except BaseException as exc:  # handed to the test's thread
            caught.append(exc)

    # On a thread: opened the ordinary way, the open would block until a writer came.
    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # release it: a writer ends the blocked open
        with pipe.open("wb"):
            pass
        reader.join()
        pytest.fail("open_image waited for a writer on a named pipe")
    assert len(caught) == 1
    assert isinstance(caught[0], SourceIsoError)
    assert caught[0].message == f"{pipe}: is not a regular file, expected an ISO image"


def test_the_iso_must_stay_the_file_that_was_checked(tmp_path: Path) -> None:
    iso = _iso(tmp_path / "app.iso")
    image = open_image(iso, _sha256(iso))
    before = identity(iso)
    check_unchanged(image, before, "while it was written")  # nothing happened
    with iso.open("r+b") as handle:  # the same bytes written again: the ctime moves
        handle.write(iso.read_bytes()[:1])
    with pytest.raises(VerificationError) as caught:
        check_unchanged(image, before, "while it was written")
    assert (caught.value.message, caught.value.hint) == (
        f"{iso}: the ISO changed while it was written",
        "make sure nothing writes to the ISO, then run the command again",
    )
    iso.unlink()
    with pytest.raises(SourceIsoError) as gone:
        identity(iso)
    assert gone.value.message == f"{iso}: cannot read it (No such file or directory)"


def test_identity_is_the_inode_size_and_times(tmp_path: Path) -> None:
    iso = _iso(tmp_path / "app.iso")
    st = iso.stat()
    seen = identity(iso)
    assert (seen.device, seen.inode, seen.size, seen.mtime_ns, seen.ctime_ns) == (
        st.st_dev, st.st_ino, SIZE, st.st_mtime_ns, st.st_ctime_ns,
    )  # fmt: skip


def test_a_digest_that_does_not_match_says_nothing_was_written(tmp_path: Path) -> None:
    iso = _iso(tmp_path / "app.iso")
    digest = _sha256(iso)
    image = open_image(iso, digest)
    check(image, digest)
    with pytest.raises(VerificationError) as caught:
        check(image, "0" * 64)
    assert (caught.value.message, caught.value.hint) == (
        f"{iso}: sha256 mismatch: expected {digest} (--sha256), got {'0' * 64}: nothing was "
        "written",
        "the file is corrupt or not the release you meant: download it again",
    )


def test_a_read_error_is_reported_as_one(tmp_path: Path) -> None:
    # The process's own memory: a regular file whose byte 32769 is an unmapped address, so
    # the read fails with EIO as a failing disk's would.
    mem = Path("/proc/self/mem")
    with pytest.raises(SourceIsoError) as caught:
        open_image(mem, None)
    assert caught.value.message == "/proc/self/mem: cannot read it (Input/output error)"


@pytest.mark.usefixtures("ascii_locale")
def test_the_sha256_file_is_utf_8_whatever_the_locale(tmp_path: Path) -> None:
    iso = _iso(tmp_path / "appliance-été.iso")
    digest = _sha256(iso)
    (tmp_path / "appliance-été.iso.sha256").write_bytes(f"{digest}  appliance-été.iso\n".encode())
    assert open_image(iso, None).sha256 == digest
