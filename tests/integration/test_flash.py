"""`isobuild flash` as root on loop devices: write and verify, refusals that leave the device
untouched (its sha256 unchanged), the confirmation prompt on a terminal, Ctrl-C."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pty
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from isobuild.errors import ExitCode
from tests.conftest import require_tool
from tests.fixtures.loop_device import (
    attached,
    device_sha256,
    make_iso,
    mkfs,
    partition,
    sectors_written,
    throttled,
    write_mbr,
)
from tests.fixtures.tmpfs import small_tmpfs
from tests.waiting import wait_until

ISOBUILD = [sys.executable, "-m", "isobuild.cli"]
MIB = 1 << 20
STICK_SIZE = 48 * MIB
HEAD = 16 * MIB  # isobuild.flash.writer.CHUNK: zeroed first, written last


@dataclass(frozen=True)
class Stick:
    device: Path
    image: Path
    before: bytes  # what the stick held before the test (random bytes)


@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_iso(tmp_path_factory.mktemp("iso"), "flash-test.iso", 20 * MIB)


@contextlib.contextmanager
def _stick(tmp_path: Path, size: int, name: str = "stick.img", **options: bool) -> Iterator[Stick]:
    image = tmp_path / name
    before = os.urandom(size)  # so what was written, zeroed or left alone shows
    image.write_bytes(before)
    with attached(image, **options) as device:
        yield Stick(device=device, image=image, before=before)


@pytest.fixture
def stick(tmp_path: Path) -> Iterator[Stick]:
    with _stick(tmp_path, STICK_SIZE, partscan=False) as made:
        yield made


def flash(*args: str | Path, setup: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI; with ``setup``, in a private mount namespace after those shell commands."""
    argv = [*ISOBUILD, "flash", *map(str, args)]
    if setup is not None:
        require_tool("unshare", "util-linux")
        script = f"set -e; {setup}; exec {shlex.join(argv)}"
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def _one_error(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal: one ``error:`` line (and a ``hint:``), nothing else on stderr or stdout."""
    lines = [line for line in done.stderr.splitlines() if not line.startswith("hint: ")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert done.stdout == ""
    return lines[0].removeprefix("error: ")


def test_flash_writes_the_iso_reads_it_back_and_wipes_an_old_backup_gpt(
    iso: Path, stick: Stick
) -> None:
    done = flash(iso, stick.device, "--yes")
    assert done.returncode == 0, done.stderr
    assert "matches" in done.stdout
    size = iso.stat().st_size
    with stick.device.open("rb") as handle:
        written = handle.read()
    assert written[:size] == iso.read_bytes()
    assert written[-MIB:] == bytes(MIB)  # where a backup GPT of the stick's old life was
    assert written[size:-MIB] == stick.before[size:-MIB]  # the rest is left alone


def test_a_byte_changed_after_flashing_is_caught_by_verify(iso: Path, stick: Stick) -> None:
    assert flash(iso, stick.device, "--yes").returncode == 0
    verified = flash(iso, stick.device, "--verify")
    assert verified.returncode == 0, verified.stderr
    where = iso.stat().st_size // 2
    fd = os.open(stick.device, os.O_RDWR)
    try:
        os.pwrite(fd, bytes([os.pread(fd, 1, where)[0] ^ 0xA5]), where)
        os.fsync(fd)
    finally:
        os.close(fd)
    before = device_sha256(stick.device)
    done = flash(iso, stick.device, "--verify")
    assert done.returncode == ExitCode.FAILURE
    # The ISO is checked against its sha256 first (it is what the stick is compared with).
    checked, failed = done.stderr.splitlines()[:2]
    assert checked.startswith(f"{iso.name}: sha256 ")
    assert " matches " in checked
    assert failed.startswith(
        f"error: {stick.device}: verify failed: byte {where} (sector {where // 512}) differs "
        "from the ISO"
    )
    assert device_sha256(stick.device) == before  # --verify writes nothing


# --- refusals: exit 4, one line, the device's hash unchanged --------------------------------


def _refused(done: subprocess.CompletedProcess[str], stick: Stick, before: str) -> str:
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    message = _one_error(done)
    assert device_sha256(stick.device) == before
    return message


def test_a_device_with_a_mounted_filesystem_is_refused(
    iso: Path, stick: Stick, tmp_path: Path
) -> None:
    mkfs(stick.device, "ext4", "STICK")
    before = device_sha256(stick.device)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # Read-only, so mounting itself writes nothing (ext4 keeps a mount count).
    done = flash(iso, stick.device, "--yes", setup=f"mount -o ro {stick.device} {mnt}")
    assert _refused(done, stick, before) == (
        f"{stick.device}: has mounted filesystems ({stick.device.name} mounted at {mnt})"
    )


def test_a_device_with_a_mounted_partition_is_refused(iso: Path, tmp_path: Path) -> None:
    image = tmp_path / "parted.img"
    image.write_bytes(bytes(STICK_SIZE))
    write_mbr(image, [(2048, STICK_SIZE // 512 - 4096, 0x0C)])
    with attached(image, partscan=True) as device:
        part = partition(device, 1)
        mkfs(part, "ext4", "STICK")  # not vfat: some kernels (this VM's) lack it, none lacks ext4
        stick = Stick(device=device, image=image, before=b"")
        before = device_sha256(device)
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        done = flash(iso, device, "--yes", setup=f"mount -o ro {part} {mnt}")
        assert _refused(done, stick, before) == (
            f"{device}: has mounted filesystems ({part.name} mounted at {mnt})"
        )
        partitioned = flash(iso, part, "--yes")
        assert _refused(partitioned, stick, before) == (
            f"{part}: is partition {part.name} of {device}, not a whole disk"
        )


def test_the_device_holding_root_is_refused(iso: Path, stick: Stick) -> None:
    mkfs(stick.device, "ext4", "FAKEROOT")
    before = device_sha256(stick.device)
    # Mounted over / in a private namespace: this process's root is that device now.
    done = flash(iso, stick.device, "--yes", "--unmount", "--allow-fixed",
                 setup=f"mount -o ro {stick.device} /")  # fmt: skip
    assert _refused(done, stick, before) == (
        f"{stick.device}: holds the running system ({stick.device.name} mounted at /): "
        "refusing to overwrite it"
    )


def test_a_device_smaller_than_the_iso_is_refused(iso: Path, tmp_path: Path) -> None:
    with _stick(tmp_path, 16 * MIB, partscan=False) as small:
        before = device_sha256(small.device)
        message = _refused(flash(iso, small.device, "--yes"), small, before)
        assert message == (
            f"{small.device}: is too small: 16.0 MiB ({16 * MIB} bytes), the ISO needs "
            f"{iso.stat().st_size / MIB:.1f} MiB ({iso.stat().st_size} bytes)"
        )


def test_a_read_only_device_is_refused(iso: Path, tmp_path: Path) -> None:
    image = tmp_path / "locked.img"
    image.write_bytes(os.urandom(STICK_SIZE))
    require_tool("losetup", "mount")
    device = Path(
        subprocess.run(["losetup", "--find", "--show", "--read-only", str(image)],
                       capture_output=True, text=True, check=True).stdout.strip()
    )  # fmt: skip
    try:
        stick = Stick(device=device, image=image, before=b"")
        before = device_sha256(device)
        assert _refused(flash(iso, device, "--yes"), stick, before) == f"{device}: is read-only"
    finally:
        subprocess.run(["losetup", "--detach", str(device)], capture_output=True, check=False)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/dev/null", "is a character device, not a block device or a regular image file"),
        ("a-directory", "is a directory, not a block device or a regular image file"),
        ("/dev/sdzz-typo", "does not exist"),
    ],
)
def test_what_is_not_a_block_device_or_an_image_file_is_refused(
    iso: Path, stick: Stick, tmp_path: Path, target: str, message: str
) -> None:
    path = tmp_path / target if target == "a-directory" else Path(target)
    if target == "a-directory":
        path.mkdir()
    done = flash(iso, path, "--yes")
    assert done.returncode == ExitCode.ENVIRONMENT
    assert _one_error(done) == f"{path}: {message}"
    assert not Path("/dev/sdzz-typo").exists()  # dd would have made a file in /dev
    if target == "a-directory":
        assert list(path.iterdir()) == []


def test_a_wrong_iso_digest_is_refused_before_writing(iso: Path, stick: Stick) -> None:
    before = device_sha256(stick.device)
    done = flash(iso, stick.device, "--yes", "--sha256", "0" * 64)
    assert done.returncode == ExitCode.INPUT
    assert _one_error(done).endswith(": nothing was written")
    assert device_sha256(stick.device) == before


def test_no_terminal_and_no_yes_writes_nothing(iso: Path, stick: Stick) -> None:
    before = device_sha256(stick.device)
    done = flash(iso, stick.device)
    assert done.returncode == ExitCode.USAGE
    assert "stdin is not a terminal" in _one_error(done)
    assert device_sha256(stick.device) == before


def test_a_loop_device_over_the_iso_itself_is_refused(iso: Path, tmp_path: Path) -> None:
    # It was written: the zeroed head cut the ISO, which the read-back then found changed.
    own = tmp_path / iso.name
    shutil.copyfile(iso, own)
    shutil.copyfile(iso.with_name(iso.name + ".sha256"), own.with_name(own.name + ".sha256"))
    before = hashlib.sha256(own.read_bytes()).hexdigest()
    with attached(own, partscan=False) as device:
        done = flash(own, device, "--yes")
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    assert _one_error(done) == (
        f"{device}: holds the ISO being written ({own}, as the loop device's backing file): "
        "writing would destroy it"
    )
    assert hashlib.sha256(own.read_bytes()).hexdigest() == before


def test_a_stick_holding_the_iso_is_refused_even_with_unmount(
    iso: Path, stick: Stick, tmp_path: Path
) -> None:
    # It was unmounted, its head zeroed (ISO and stick lost), then a FileNotFoundError.
    mkfs(stick.device, "ext4", "STICK")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    copy = f"mount {stick.device} {mnt} && cp {iso} {iso}.sha256 {mnt}/"
    done = flash(mnt / iso.name, stick.device, "--yes", "--unmount", setup=copy)
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    assert _one_error(done) == (
        f"{stick.device}: holds the ISO being written ({mnt / iso.name}, on "
        f"{stick.device.name}, mounted at {mnt}): writing would destroy it"
    )
    # The stick and the ISO on it are whole: mounted again, the ISO is still the ISO.
    check = f"mount -o ro {stick.device} {mnt} && sha256sum {mnt / iso.name}"
    read = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", check],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert read.stdout.split()[0] == hashlib.sha256(iso.read_bytes()).hexdigest()


def test_unmount_unmounts_the_stick_then_flashes(iso: Path, stick: Stick, tmp_path: Path) -> None:
    mkfs(stick.device, "ext4", "STICK")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = flash(iso, stick.device, "--yes", "--unmount", setup=f"mount {stick.device} {mnt}")
    assert done.returncode == 0, done.stderr
    with stick.device.open("rb") as handle:
        assert handle.read(iso.stat().st_size) == iso.read_bytes()


def test_an_image_file_is_written_and_verified(iso: Path, tmp_path: Path) -> None:
    image = tmp_path / "stick.img"
    image.write_bytes(os.urandom(STICK_SIZE))
    done = flash(iso, image, "--yes")
    assert done.returncode == 0, done.stderr
    assert image.stat().st_size == STICK_SIZE  # not truncated: an image keeps its size
    assert image.read_bytes()[: iso.stat().st_size] == iso.read_bytes()


def _stopped(done: subprocess.CompletedProcess[str], target: Path) -> str:
    """A write that failed: after the ISO's check, the target called unusable, then one
    error line (and a hint)."""
    checked, *said = [line for line in done.stderr.splitlines() if not line.startswith("hint: ")]
    assert " matches " in checked, done.stderr
    assert said == [f"{target}: stopped while writing: it is unusable until flashed again",
                    said[-1]], done.stderr  # fmt: skip
    assert said[-1].startswith("error: ")
    return said[-1].removeprefix("error: ")


def test_an_image_file_its_filesystem_cannot_hold_is_refused_before_writing(
    iso: Path, tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "small", 8 * MIB) as small:
        image = small / "stick.img"
        image.write_bytes(os.urandom(2 * MIB))
        os.truncate(image, STICK_SIZE)  # 2 MiB on disk, the rest a hole, as `truncate -s`
        before = device_sha256(image)
        done = flash(iso, image, "--yes")
        assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
        message = _one_error(done)
        assert message.startswith(f"{image}: its filesystem has ")
        needs = (iso.stat().st_size - 2 * MIB) / MIB
        assert message.endswith(f"needs {needs:.1f} MiB more in this image file"), message
        assert device_sha256(image) == before


def test_an_image_file_whose_write_fails_midway_says_so_in_one_line(
    iso: Path, tmp_path: Path
) -> None:
    # The space check passes; the kernel then stops the file at 18 MiB (RLIMIT_FSIZE), as a
    # filesystem that fills meanwhile, FAT32's 4 GiB or a quota would.
    prlimit = require_tool("prlimit", "util-linux")
    image = tmp_path / "stick.img"
    image.write_bytes(os.urandom(STICK_SIZE))
    argv = [prlimit, f"--fsize={18 * MIB}", *ISOBUILD, "flash", str(iso), str(image), "--yes"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    # Where the limit cut it, inside the request that started at HEAD.
    assert _stopped(done, image) == f"{image}: write failed at byte {18 * MIB}: File too large"
    assert "`ulimit -f` limits file sizes: put the image on another filesystem" in done.stderr
    assert image.read_bytes()[:HEAD] == bytes(HEAD)  # no boot signature on it


def test_a_stick_that_fails_while_writing_says_so_in_one_line(iso: Path, tmp_path: Path) -> None:
    # A 48 MiB loop device whose backing file can hold 18 MiB: the zeroed head (16 MiB) and
    # tail (1 MiB) fit, the ISO's body does not: the device itself refuses the write.
    with small_tmpfs(tmp_path / "backing", 18 * MIB) as backing:
        image = backing / "stick.img"
        with image.open("wb") as handle:
            handle.truncate(STICK_SIZE)
        with attached(image, partscan=False) as device:
            done = flash(iso, device, "--yes")
            assert done.returncode == ExitCode.FAILURE, done.stderr
            assert _stopped(done, device).startswith(f"{device}: write failed at byte {HEAD}: ")
            assert "the stick may be failing" in done.stderr
            with device.open("rb") as handle:
                assert handle.read(HEAD) == bytes(HEAD)


# --- the prompt on a terminal ---------------------------------------------------------------


def _answer_prompt(argv: list[str], answer: str) -> tuple[int, str]:
    """Run ``argv`` with a terminal as stdin/stderr, answer its prompt, return rc + output."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(argv, stdin=secondary, stderr=secondary, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    os.close(secondary)
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while b"Type yes to continue" not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            ready, _, _ = select.select([primary], [], [], 1.0)
            if ready:
                seen += os.read(primary, 4096)
        os.write(primary, answer.encode() + b"\n")
        out, _ = proc.communicate(timeout=120)
        with_rest = seen
        while select.select([primary], [], [], 0.1)[0]:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal's other side is gone
                break
            if not chunk:
                break
            with_rest += chunk
        return proc.returncode, with_rest.decode(errors="replace") + out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)


def test_the_prompt_shows_the_device_and_no_writes_nothing(iso: Path, stick: Stick) -> None:
    before = device_sha256(stick.device)
    returncode, output = _answer_prompt([*ISOBUILD, "flash", str(iso), str(stick.device)], "no")
    assert returncode == ExitCode.FAILURE
    assert f"{stick.device} ({stick.device.name}): loop device on {stick.image}" in output
    assert "not confirmed: nothing was written" in output
    assert device_sha256(stick.device) == before


def test_the_prompt_and_the_list_show_the_partitions_filesystems_and_labels(
    iso: Path, tmp_path: Path
) -> None:
    # What tells a technician their backup stick from the blank one: udev's record, or
    # where there is none (this VM runs no udev) what blkid probes.
    image = tmp_path / "backup.img"
    image.write_bytes(bytes(STICK_SIZE))
    write_mbr(image, [(2048, STICK_SIZE // 512 - 4096, 0x83)])
    with attached(image, partscan=True) as device:
        part = partition(device, 1)
        mkfs(part, "ext4", "OLD BACKUP")
        before = device_sha256(device)
        returncode, output = _answer_prompt([*ISOBUILD, "flash", str(iso), str(device)], "no")
        assert returncode == ExitCode.FAILURE, output
        size = f"{(STICK_SIZE - 4096 * 512) / MIB:.1f}"
        row = [part.name, size, "MiB", "ext4", '"OLD', 'BACKUP"']
        assert row in [line.split() for line in output.splitlines()], output
        assert device_sha256(device) == before
        listed = subprocess.run([*ISOBUILD, "flash", "--list", "--all", "--json"],
                                capture_output=True, text=True, check=True)  # fmt: skip
        (disk,) = [d for d in json.loads(listed.stdout)["devices"] if d["device"] == str(device)]
        assert disk["partitions"] == [
            {"name": part.name, "size": STICK_SIZE - 4096 * 512, "fstype": "ext4",
             "label": "OLD BACKUP"}
        ]  # fmt: skip


def test_yes_at_the_prompt_flashes(iso: Path, stick: Stick) -> None:
    argv = [*ISOBUILD, "flash", str(iso), str(stick.device)]
    returncode, output = _answer_prompt(argv, "yes")
    assert returncode == 0, output
    assert "matches" in output


# --- Ctrl-C while writing -------------------------------------------------------------------


def test_ctrl_c_while_writing_exits_130_and_leaves_no_boot_signature(tmp_path: Path) -> None:
    big = make_iso(tmp_path, "big.iso", 64 * MIB)
    with _stick(tmp_path, 96 * MIB, partscan=False) as stick:
        # 16 MB/s, like a slow stick: about four seconds of writing to interrupt.
        with throttled(stick.device, 16 * 10**6) as procs:
            argv = [*ISOBUILD, "flash", str(big), str(stick.device), "--yes"]
            script = f"echo $$ > {shlex.quote(str(procs))}; exec {shlex.join(argv)}"
            proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)  # fmt: skip
            try:
                start = sectors_written(stick.device)

                def well_into_the_body() -> bool:  # past the zeroed head, 16 MiB more
                    assert proc.poll() is None, proc.communicate()
                    return sectors_written(stick.device) - start >= (HEAD + 16 * MIB) // 512

                wait_until(well_into_the_body, 120, "the flash to write 24 MiB")
                os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole group
                _, stderr = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        assert proc.returncode == ExitCode.INTERRUPTED, stderr
        assert f"{stick.device}: stopped while writing: it is unusable until flashed again" in (
            stderr
        )
        assert "interrupted (SIGINT)" in stderr
        with stick.device.open("rb") as handle:
            assert handle.read(HEAD) == bytes(HEAD)  # no MBR, GPT or ISO volume descriptor
