"""A cached rootfs with /proc and tmpfs mounted in it: refused, never copied, cleaned.

Real mounts (as root) in a small scratch tree that stands in for the debootstrapped cache
(``tests/system/rootfs.py`` builds the real one in minutes; the mount handling is the same
code). Every mount is a proc or a 1 MiB tmpfs, and copies go to a 16 MiB tmpfs: a copy that
crossed into /proc would stop at ENOSPC there instead of filling the disk.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_root, unavailable
from tests.fixtures import mounts
from tests.fixtures.mounts import MountedTree
from tests.system import rootfs

SPEC = rootfs.RootfsSpec()


@dataclass
class Scratch:
    cache: Path
    dest: Path  # <cache>/system-rootfs/<key>, as ensure_base_rootfs lays it out
    copies: Path  # a 16 MiB tmpfs
    mounted: list[Path]

    @property
    def tree(self) -> Path:
        return self.dest / "tree"

    def mount(self, point: Path, *args: str) -> None:
        point.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *args, str(point)], check=True, capture_output=True)
        self.mounted.append(point)


def _lay_out(dest: Path) -> None:
    tree = dest / "tree"
    for directory in ("etc", "proc", "run", "srv/my data", "var/lib"):
        (tree / directory).mkdir(parents=True)
    (tree / "etc/hostname").write_text("standin\n")
    (dest / "vmlinuz").write_bytes(b"kernel")
    (dest / "initrd.img").write_bytes(b"initrd")


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Scratch]:
    require_root("mounts a proc and tmpfs file systems into a scratch rootfs tree")
    cache = tmp_path / "cache"
    dest = cache / "system-rootfs" / SPEC.key()
    _lay_out(dest)
    (dest / "complete.json").write_text("{}\n")
    scratch = Scratch(cache=cache, dest=dest, copies=tmp_path / "copies", mounted=[])
    try:
        try:
            scratch.mount(scratch.copies, "-t", "tmpfs", "-o", "size=16m", "tmpfs")
        except subprocess.CalledProcessError as exc:
            unavailable(f"cannot mount a tmpfs here: {exc.stderr.decode().strip()}")
        yield scratch
    finally:
        # Whatever a failed test left: lazily, so a busy mount cannot outlive the test.
        for mount in mounts.mounts_under(tmp_path):
            subprocess.run(["umount", "--lazy", str(mount.mount_point)], check=False)
        assert mounts.mounts_under(tmp_path) == []


def _mount_the_usual(scratch: Scratch, tree: Path) -> None:
    """What a chroot leaves behind: /proc, /run with /run/lock in it, a path with a space."""
    scratch.mount(tree / "proc", "-t", "proc", "proc")
    scratch.mount(tree / "run", "-t", "tmpfs", "-o", "size=1m", "tmpfs")
    scratch.mount(tree / "run/lock", "-t", "tmpfs", "-o", "size=1m", "tmpfs")
    scratch.mount(tree / "srv/my data", "-t", "tmpfs", "-o", "size=1m", "tmpfs")
    (tree / "run/lock/marker").write_text("on the tmpfs\n")


def test_a_cached_tree_with_mounts_is_refused_with_the_command_that_clears_it(
    scratch: Scratch,
) -> None:
    _mount_the_usual(scratch, scratch.tree)
    with pytest.raises(MountedTree) as refused:
        rootfs.ensure_base_rootfs(scratch.cache, SPEC)
    message = str(refused.value)
    assert "refusing to use it as the cached rootfs" in message
    for point, kind in (("proc", "proc"), ("run", "tmpfs"), ("run/lock", "tmpfs")):
        assert f"{scratch.tree / point} ({kind} from " in message
    assert f"{scratch.tree}/srv/my data (tmpfs" in message
    command = message.split("clear it with: ", 1)[1]
    assert command.startswith("sudo umount ")

    # The command it names, run as it stands (without sudo: the test is root), clears it.
    subprocess.run(shlex.split(command)[1:], check=True, capture_output=True)
    assert mounts.mounts_under(scratch.dest) == []
    base = rootfs.ensure_base_rootfs(scratch.cache, SPEC)
    assert base.tree == scratch.tree
    assert base.build_seconds is None  # from the cache, not rebuilt


def test_a_tree_with_proc_mounted_is_never_copied(scratch: Scratch) -> None:
    _mount_the_usual(scratch, scratch.tree)
    base = rootfs.BaseRootfs(
        tree=scratch.tree, kernel=scratch.dest / "vmlinuz", initrd=scratch.dest / "initrd.img",
        build_seconds=None,
    )  # fmt: skip
    target = scratch.copies / "target"
    with pytest.raises(MountedTree, match="refusing to copy it to"):
        rootfs.copy_tree(base, target)
    assert not target.exists()
    with pytest.raises(MountedTree, match="refusing to write it into"):
        rootfs.make_disk(scratch.tree, scratch.copies / "disk.raw", extra_bytes=0)
    assert not (scratch.copies / "disk.raw").exists()
    # Sizing a tree never descends into what is mounted in it.
    walked = {p.relative_to(scratch.tree).as_posix() for p in mounts.walk_files(scratch.tree)}
    assert walked == {"etc/hostname"}

    mounts.unmount_all(scratch.tree)
    rootfs.copy_tree(base, target)
    assert (target / "etc/hostname").read_text() == "standin\n"
    assert list((target / "proc").iterdir()) == []
    assert list((target / "run").iterdir()) == []


def test_a_tree_with_a_mount_is_not_deleted_and_not_pruned(scratch: Scratch) -> None:
    _mount_the_usual(scratch, scratch.tree)
    with pytest.raises(MountedTree, match="refusing to delete it"):
        mounts.remove_tree(scratch.dest)
    assert (scratch.tree / "run/lock/marker").is_file()
    assert (scratch.tree / "etc/hostname").is_file()  # refused before deleting anything
    # An older spec's tree is pruned after a build: not while something is mounted in it.
    root = scratch.dest.parent
    (root / f"{SPEC.key()}.lock").touch()
    with pytest.raises(MountedTree, match="refusing to delete it"):
        rootfs._prune(root, keep="a-newer-spec")
    assert (scratch.tree / "etc/hostname").is_file()


def test_the_build_unmounts_everything_before_marking_the_tree_complete(
    scratch: Scratch,
) -> None:
    work = scratch.dest.with_name(scratch.dest.name + ".partial")
    scratch.dest.rename(work)
    (work / "complete.json").unlink()
    tree = work / "tree"
    _mount_the_usual(scratch, tree)
    # A bind mount over srv/, which holds the mounted "srv/my data": it must go first.
    elsewhere = scratch.cache / "elsewhere"
    elsewhere.mkdir()
    scratch.mount(tree / "srv", "--bind", str(elsewhere))

    rootfs.seal(work, scratch.dest, {"suite": "bookworm"})
    assert mounts.mounts_under(scratch.cache) == []
    assert not work.exists()
    assert (scratch.dest / "complete.json").is_file()
    assert not (scratch.tree / "run/lock/marker").exists()  # that was on the tmpfs
    assert rootfs.ensure_base_rootfs(scratch.cache, SPEC).build_seconds is None


def test_a_mount_that_cannot_be_unmounted_fails_the_build(scratch: Scratch) -> None:
    work = scratch.dest.with_name(scratch.dest.name + ".partial")
    scratch.dest.rename(work)
    (work / "complete.json").unlink()
    tree = work / "tree"
    _mount_the_usual(scratch, tree)
    with (tree / "run/lock/marker").open() as busy:  # an open file keeps the tmpfs busy
        with pytest.raises(MountedTree) as failed:
            rootfs.seal(work, scratch.dest, {"suite": "bookworm"})
        assert busy.readable()
    message = str(failed.value)
    assert f"cannot unmount {tree}/run/lock (tmpfs)" in message
    assert f"still mounted: {tree}/run/lock (tmpfs" in message
    assert not (work / "complete.json").exists()
    assert not scratch.dest.exists()  # not marked, not moved into the cache
