"""A write that finds no room (no blocks, no inodes) is one line, exit 4, and loses nothing.

The filesystems are small tmpfs mounts (tests/fixtures/tmpfs.py). One with room for the
bytes but a fixed number of inodes stops a build at the file it makes when they run out:
given one inode fewer than it needs at its peak, then two fewer, and so on, the build
stops at each of its last files in turn (the ISO among them), and at its first ones.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from isobuild import no_room
from isobuild.errors import ExitCode
from tests.fixtures.tmpfs import resize, small_tmpfs

if TYPE_CHECKING:
    from tests.fixtures.standin_artifacts import StandinArtifacts

ISOBUILD = [sys.executable, "-m", "isobuild.cli", "--quiet"]
ROOM = 256 << 20  # bytes enough for a build on the stand-in base ISO (42 MB)
NO_INODES = "its filesystem has free space but no free inodes (`df -i` shows 100 %)"


def _isobuild(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ISOBUILD, *args], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip


def _error(done: subprocess.CompletedProcess[str]) -> str:
    """The one ``error:`` line of a refused run; no traceback."""
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0].removeprefix("error: ")


def _hint(done: subprocess.CompletedProcess[str]) -> str:
    hints = [line for line in done.stderr.splitlines() if line.startswith("hint: ")]
    assert len(hints) == 1, done.stderr
    return hints[0].removeprefix("hint: ")


@pytest.fixture(scope="module")
def build_into(
    standin_base_iso: Path, standin_artifacts_dir: StandinArtifacts, isobuild_cache: Path
) -> Callable[[Path], subprocess.CompletedProcess[str]]:
    """`isobuild build` from the stand-in base ISO into the output directory given."""

    def run(output: Path) -> subprocess.CompletedProcess[str]:
        return _isobuild(
            "build", "--base-iso", str(standin_base_iso), "--output-dir", str(output),
            "--cache-dir", str(isobuild_cache), "--lock", str(standin_artifacts_dir.lock_path),
            "--mirror", str(standin_artifacts_dir.directory),
        )  # fmt: skip

    return run


def _build_with_inodes(
    build_into: Callable[[Path], subprocess.CompletedProcess[str]], where: Path, inodes: int
) -> tuple[subprocess.CompletedProcess[str], list[Path]]:
    """A build into ``where/out`` on a tmpfs of ``inodes`` inodes; what it left there."""
    with small_tmpfs(where, ROOM, inodes=inodes) as fs:
        done = build_into(fs / "out")
        left = sorted(fs.rglob("*"))
    where.rmdir()
    return done, left


@pytest.fixture(scope="module")
def inodes_a_build_needs(
    build_into: Callable[[Path], subprocess.CompletedProcess[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> int:
    """The fewest inodes (the tmpfs root among them) a build succeeds with, by bisection."""
    where = tmp_path_factory.mktemp("bisect") / "fs"
    fails, succeeds = 2, 1024
    done, _ = _build_with_inodes(build_into, where, succeeds)
    assert done.returncode == 0, done.stderr
    while succeeds - fails > 1:
        middle = (fails + succeeds) // 2
        done, _ = _build_with_inodes(build_into, where, middle)
        if done.returncode == 0:
            succeeds = middle
        else:
            fails = middle
    return succeeds


def test_a_build_out_of_inodes_stops_at_each_file_in_one_line_and_leaves_nothing(
    build_into: Callable[[Path], subprocess.CompletedProcess[str]],
    inodes_a_build_needs: int,
    tmp_path: Path,
) -> None:
    peak = inodes_a_build_needs
    # Its directory, its staging, a file of the payload, then each of the last eight files.
    counts = [2, 3, peak // 2, *range(peak - 8, peak)]
    errors = {}
    for inodes in counts:
        done, left = _build_with_inodes(build_into, tmp_path / f"fs-{inodes}", inodes)
        errors[inodes] = _error(done)
        assert _hint(done).startswith(NO_INODES), (inodes, done.stderr)
        assert _hint(done).endswith("choose another --output-dir"), (inodes, done.stderr)
        assert left == [], (inodes, left)  # not even the output directory the build made
    out = tmp_path / "fs-2" / "out"  # each build wrote to <its tmpfs>/out
    assert errors[2] == f"{out}: making the build's directory failed: No space left on device"
    iso_failed = [n for n, error in errors.items() if "writing the ISO failed" in error]
    assert len(iso_failed) == 1, errors
    for inodes, error in errors.items():
        out = tmp_path / f"fs-{inodes}" / "out"
        if inodes in iso_failed:
            expected = f"{out}/alga-appliance-0.1.0.iso: writing the ISO failed"
        elif inodes == 2:
            continue
        else:
            expected = f"{out}: writing the build's files failed"
        assert error == f"{expected}: No space left on device", (inodes, errors)
    # Files after the ISO (its checksum, the manifest, the SBOM, SHA256SUMS) stopped it too.
    assert iso_failed[0] < peak - 2, errors


def test_a_download_into_a_full_cache_is_one_line_and_resumes_once_there_is_room(
    standin_artifacts_dir: StandinArtifacts, tmp_path: Path
) -> None:
    lock = standin_artifacts_dir.lock_path
    mirror = standin_artifacts_dir.directory
    with small_tmpfs(tmp_path / "small", 128 << 10) as small:  # under the stand-in k3s
        cache = small / "cache"
        full = _isobuild("fetch", "--lock", str(lock), "--mirror", str(mirror),
                         "--cache-dir", str(cache))  # fmt: skip
        assert _error(full) == (
            f"{cache}/artifacts: downloading k3s into the cache failed: No space left on device"
        )
        assert _hint(full) == (
            "its filesystem is full (`df -h`): free some space or pass --cache-dir with a "
            "directory on a filesystem with room"
        )
        assert list((cache / "artifacts" / "sha256").glob("*")) == []  # nothing unverified
        resize(small, 64 << 20)
        again = _isobuild("fetch", "--lock", str(lock), "--mirror", str(mirror),
                          "--cache-dir", str(cache))  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "all verified" in again.stdout
        pinned = {pin.sha256 for pin in standin_artifacts_dir.lock.files()}
        assert {p.name for p in (cache / "artifacts" / "sha256").iterdir()} == pinned


def test_a_build_whose_cache_is_full_names_the_cache_not_its_output(
    standin_base_iso: Path, standin_artifacts_dir: StandinArtifacts, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with small_tmpfs(tmp_path / "small", 128 << 10) as small:
        done = _isobuild(
            "build", "--base-iso", str(standin_base_iso), "--output-dir", str(out),
            "--cache-dir", str(small / "cache"), "--lock", str(standin_artifacts_dir.lock_path),
            "--mirror", str(standin_artifacts_dir.directory),
        )  # fmt: skip
        assert _error(done) == (
            f"{small}/cache/artifacts: downloading k3s into the cache failed: No space left on "
            "device"
        )
    assert not out.exists()


def test_a_cache_out_of_inodes_says_so(
    standin_artifacts_dir: StandinArtifacts, tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "small", 64 << 20, inodes=5) as small:
        cache = small / "cache"
        done = _isobuild("fetch", "--lock", str(standin_artifacts_dir.lock_path),
                         "--mirror", str(standin_artifacts_dir.directory),
                         "--cache-dir", str(cache))  # fmt: skip
        assert _error(done).startswith(f"{cache}/artifacts: downloading ")
        assert _hint(done).startswith(NO_INODES)


@pytest.mark.parametrize(
    ("room", "inodes", "hint"),
    [
        # inodes for the directory it makes and its staging directory, none for their files
        (64 << 20, 3, NO_INODES),
        # none for the staging directory: the directory it made goes again
        (64 << 20, 2, NO_INODES),
        # room for the files' inodes, not for their bytes
        (200 << 10, None, "its filesystem is full (`df -h`)"),
    ],
    ids=["no-inodes-for-files", "no-inode-for-staging", "no-blocks"],
)
def test_stand_in_artifacts_without_room_name_the_directory_and_leave_nothing(
    tmp_path: Path, room: int, inodes: int | None, hint: str
) -> None:
    # Not the hidden staging directory the files go into first, which is gone afterwards.
    with small_tmpfs(tmp_path / "small", room, inodes=inodes) as small:
        directory = small / "artifacts"
        done = _isobuild("standin-artifacts", str(directory))
        assert (
            _error(done)
            == f"{directory}: writing the stand-in artifacts failed: No space left on device"
        )
        assert _hint(done).startswith(hint)
        assert _hint(done).endswith("choose another DIRECTORY")
        assert list(small.iterdir()) == []


def test_a_stand_in_iso_without_an_inode_for_its_work_directory_names_out_s_directory(
    tmp_path: Path, fixture_cache: Path
) -> None:
    # OUT's directory exists and takes no new inode: the work directory beside OUT is the
    # first thing made, and its random name is not one to show.
    with small_tmpfs(tmp_path / "small", 64 << 20, inodes=1) as small:
        done = _isobuild("standin-iso", "--cache-dir", str(fixture_cache),
                         str(small / "standin.iso"))  # fmt: skip
        assert _error(done) == f"{small}: writing the stand-in ISO failed: No space left on device"
        assert _hint(done).startswith(NO_INODES)
        assert _hint(done).endswith("choose another OUT")
        assert list(small.iterdir()) == []


@pytest.mark.parametrize("room", [0.25, 0.6, 0.9, 1.5], ids=lambda r: f"{r:g}x-the-iso")
def test_a_stand_in_iso_without_room_names_its_directory_and_leaves_nothing(
    tmp_path: Path, standin_base_iso: Path, fixture_cache: Path, room: float
) -> None:
    # Its work tree is about the ISO's size, and then the ISO is written beside it: with
    # room for a quarter of it a file of the tree fails (a write naming no file), with 0.6x
    # depmod (a tool) writing the initrd's modules, with 0.9x the initrd's copy into the
    # tree, and with 1.5x the tree fits and xorriso finds no room for the ISO. Each is the
    # same line.
    size = int(standin_base_iso.stat().st_size * room)
    with small_tmpfs(tmp_path / "small", size) as small:
        out = small / "made" / "by-it" / "standin.iso"
        done = _isobuild("standin-iso", "--cache-dir", str(fixture_cache), str(out))
        assert (
            _error(done)
            == f"{out.parent}: writing the stand-in ISO failed: No space left on device"
        )
        assert _hint(done).endswith("choose another OUT")
        assert list(small.iterdir()) == []  # its work tree, and the directories it made


def test_a_copy_into_a_full_disk_names_the_copy_not_its_source(tmp_path: Path) -> None:
    # shutil.copyfile names the file it read first (filename) and the one it wrote second
    # (filename2): the place without room is the second.
    source = tmp_path / "source"
    source.write_bytes(os.urandom(2 << 20))
    with small_tmpfs(tmp_path / "small", 1 << 20) as small:
        with pytest.raises(OSError, match="No space left on device") as caught:
            shutil.copyfile(source, small / "copy")
        assert caught.value.errno == errno.ENOSPC
        assert no_room.written(caught.value) == small / "copy"
        assert no_room.within(caught.value, small)
        assert not no_room.within(caught.value, tmp_path / "elsewhere")
