"""isobuild.build.work_dir: one build at a time per output directory; what killed ones left."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path

import pytest

from isobuild.build import work_dir
from isobuild.build.work_dir import PREFIX, private, remove_stale
from isobuild.errors import EnvironmentProblem

ROOT_ONLY = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"


def _mountinfo(tmp_path: Path, *points: str) -> Path:
    lines = [ROOT_ONLY] + [
        f"{40 + i} 22 0:{50 + i} / {p.replace(' ', chr(92) + '040')} rw - tmpfs tmpfs rw\n"
        for i, p in enumerate(points)
    ]
    path = tmp_path / "mountinfo"
    path.write_text("".join(lines))
    return path


def _left_by_a_killed_build(out: Path, name: str) -> Path:
    stale = out / f"{PREFIX}{name}"
    (stale / "staging" / "payload").mkdir(parents=True)
    (stale / "alga-appliance-0.1.0.iso").write_bytes(bytes(3 << 20))
    (stale / "staging" / "payload" / "k3s").write_bytes(b"k3s")
    return stale


def test_what_killed_builds_left_is_removed_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = [_left_by_a_killed_build(out, n) for n in ("a1b2c3", "zz9")]
    (out / "alga-appliance-0.1.0.iso").write_bytes(b"the last build's ISO")
    (out / f"{PREFIX}note").write_text("a file, not a build's directory")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("mine")
    (out / f"{PREFIX}link").symlink_to(elsewhere)
    assert remove_stale(out, mountinfo=_mountinfo(tmp_path)) == stale
    assert sorted(p.name for p in out.iterdir()) == [
        f"{PREFIX}link", f"{PREFIX}note", "alga-appliance-0.1.0.iso",
    ]  # fmt: skip
    assert (elsewhere / "keep").read_text() == "mine"  # a link is not followed


def test_a_directory_something_is_mounted_in_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out dir"
    out.mkdir()
    stale = _left_by_a_killed_build(out, "mounted")
    (stale / "proc").mkdir()
    mountinfo = _mountinfo(tmp_path, str(stale / "proc"))
    assert remove_stale(out, mountinfo=mountinfo) == []
    assert (stale / "alga-appliance-0.1.0.iso").is_file()


def test_nothing_to_remove_reads_no_mount_table(tmp_path: Path) -> None:
    assert remove_stale(tmp_path, mountinfo=tmp_path / "never-read") == []


def test_a_second_build_into_a_locked_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = _left_by_a_killed_build(out, "running")  # the running build's, in fact
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the running build holds it
        with pytest.raises(EnvironmentProblem) as caught, private(out):
            pass
    finally:
        os.close(fd)
    assert caught.value.message == f"{out}: another build is writing into it"
    assert stale.is_dir()  # the running build's directory is not touched


def test_the_private_directory_goes_and_a_directory_the_build_made_too(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with private(out) as work:
        assert work.parent == out
        assert work.name.startswith(PREFIX)
        (work / "x.iso").write_bytes(b"x")
    assert list(out.iterdir()) == []  # done: the work directory is gone, out stays
    with pytest.raises(RuntimeError), private(tmp_path / "made") as work:
        raise RuntimeError("a step failed")
    assert not (tmp_path / "made").exists()  # it made it, and it is empty: removed
    with pytest.raises(RuntimeError), private(tmp_path / "made" / "deeper" / "out") as work:
        raise RuntimeError("a step failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]  # and the parents it made


def test_without_locks_nothing_is_taken_for_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some NFS setups have no flock: the build goes on, but cannot tell a killed build's
    # directory from one a build elsewhere is writing in, so it removes none.
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(work_dir.fcntl, "flock", no_locks)
    out = tmp_path / "out"
    out.mkdir()
    other = _left_by_a_killed_build(out, "maybe-running")
    with private(out) as work:
        assert work.is_dir()
    assert other.is_dir()


def test_each_stale_directory_is_said_and_one_mounted_in_stops_no_other(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mounted = _left_by_a_killed_build(out, "a-mounted")
    (mounted / "proc").mkdir()
    free = _left_by_a_killed_build(out, "b-free")
    with caplog.at_level(logging.WARNING, logger=work_dir.__name__):
        removed = remove_stale(out, mountinfo=_mountinfo(tmp_path, str(mounted / "proc")))
    assert removed == [free]
    assert mounted.is_dir()
    assert [r.getMessage() for r in caplog.records] == [
        f"{mounted}: left by a build that was stopped, but {mounted / 'proc'} is mounted in "
        "it: not removed",
        f"removed {free} (3.0 MiB), left by a build that was stopped before it could clean up",
    ]


@pytest.mark.parametrize(
    ("code", "message", "hint"),
    [
        (errno.ENOSPC, "{out}: making it failed: No space left on device",
         "its filesystem is full (`df -h`): free some space or choose another --output-dir"),
        (errno.EACCES, "{out}: output directory is not writable (Permission denied)",
         "choose a writable --output-dir"),
        (errno.EPERM, "{out}: output directory is not writable (Operation not permitted)",
         "choose a writable --output-dir"),
        (errno.EROFS, "{out}: output directory is not writable (Read-only file system)",
         "choose a writable --output-dir"),
        (errno.ENOTDIR, "{out}: making it failed (Not a directory)",
         "choose another --output-dir"),
    ],
    ids=["full", "denied", "not-permitted", "read-only", "other"],
)  # fmt: skip
def test_an_output_directory_that_cannot_be_written_says_why(
    tmp_path: Path, code: int, message: str, hint: str
) -> None:
    exc = OSError(code, os.strerror(code))
    problem = work_dir._not_writable(exc, tmp_path, "making it")
    assert problem.message == message.format(out=tmp_path)
    assert problem.hint == hint


def test_an_output_directory_below_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("a file")
    out = tmp_path / "notes" / "out"
    with pytest.raises(EnvironmentProblem) as caught, private(out):
        pass
    assert caught.value.message == f"{out}: making it failed (Not a directory)"
    assert (tmp_path / "notes").read_text() == "a file"
