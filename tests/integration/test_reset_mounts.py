"""reset-data's tree removal against real mounts (root): a file system or a bind mount below
a tree it deletes stops it before anything is deleted, on either side of the mount."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from host_service.support.reset import ResetRefused, remove_tree
from tests.conftest import require_root
from tests.fixtures.tmpfs import small_tmpfs


def _files(top: Path) -> dict[str, str]:
    return {str(p.relative_to(top)): p.read_text() for p in sorted(top.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    top = tmp_path / "storage" / "pvc-1"
    (top / "data").mkdir(parents=True)
    (top / "data" / "row").write_text("the tree's own")
    return top


@pytest.fixture
def bind_source(tmp_path: Path) -> Path:
    source = tmp_path / "elsewhere"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "deep.txt").write_text("not the appliance's")
    (source / "top.txt").write_text("not the appliance's")
    return source


def test_a_file_system_mounted_below_stops_it_before_anything_goes(
    tmp_path: Path, tree: Path
) -> None:
    with small_tmpfs(tree / "mnt", 1 << 20) as mounted:
        (mounted / "sub").mkdir()
        (mounted / "sub" / "deep.txt").write_text("on another file system")
        (mounted / "on-other-fs.txt").write_text("on another file system")
        before = _files(tree)
        with pytest.raises(ResetRefused, match=f"^{mounted} is a mount point"):
            remove_tree(tree.parent)
        assert _files(tree) == before
    remove_tree(tree.parent)  # unmounted: it goes
    assert not tree.parent.exists()


def test_a_bind_mount_below_stops_it_before_anything_goes(tree: Path, bind_source: Path) -> None:
    # Same device as the tree: only the mount table tells it from a directory.
    require_root("bind-mounts a directory")
    target = tree / "mnt"
    target.mkdir()
    subprocess.run(["mount", "--bind", str(bind_source), str(target)], check=True)
    try:
        before = _files(tree)
        with pytest.raises(ResetRefused, match=f"^{target} is a mount point"):
            remove_tree(tree)
        assert _files(tree) == before
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert _files(bind_source) == {"sub/deep.txt": "not the appliance's",
                                   "top.txt": "not the appliance's"}  # fmt: skip
