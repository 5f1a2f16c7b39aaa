"""BuildContext: what steps use to put files on the ISO."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from isobuild.build import BuildContext, BuildOptions, Tools
from isobuild.build.context import SNAPSHOT_MAX
from isobuild.config import load_config
from isobuild.errors import VerificationError
from isobuild.iso.gpgv import RealGpgv
from isobuild.iso.source import SourceIso
from isobuild.iso.xorriso import RealXorriso


@pytest.fixture
def ctx(standin_base_iso: Path, tmp_path: Path) -> Iterator[BuildContext]:
    staging = tmp_path / "work" / "staging"
    staging.mkdir(parents=True)
    source = SourceIso(standin_base_iso)
    source.open()
    try:
        yield BuildContext(
            config=load_config(None),
            tools=Tools(xorriso=RealXorriso(), gpgv=RealGpgv()),
            options=BuildOptions(
                base_iso=standin_base_iso, output_dir=tmp_path / "out", cache_dir=tmp_path / "cache"
            ),
            workdir=tmp_path / "work",
            staging=staging,
            source=source,
        )
    finally:
        source.close()


def test_add_file_records_digests_action_and_mode(ctx: BuildContext, tmp_path: Path) -> None:
    script = tmp_path / "install"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    added = ctx.add_file("/appliance/install", script)
    changed = ctx.add_bytes("/boot/grub/grub.cfg", "set timeout=1\n")
    assert added.action == "added"
    assert added.mode == 0o555
    assert added.sha256 == hashlib.sha256(b"#!/bin/sh\n").hexdigest()
    assert added.md5 == hashlib.md5(b"#!/bin/sh\n", usedforsecurity=False).hexdigest()
    assert changed.action == "changed"
    assert changed.mode == 0o444
    assert set(ctx.files) == {"/appliance/install", "/boot/grub/grub.cfg"}


def test_a_small_file_edited_after_it_was_added_does_not_change_the_iso(
    ctx: BuildContext, tmp_path: Path
) -> None:
    source = tmp_path / "settings.py"
    source.write_text("PORT = 8080\n")
    record = ctx.add_file("/appliance/settings.py", source)
    source.write_text("PORT = 9090  # edited while the build runs\n")
    assert record.local_path.read_text() == "PORT = 8080\n"
    assert record.sha256 == hashlib.sha256(b"PORT = 8080\n").hexdigest()


def test_big_files_are_mapped_in_place(ctx: BuildContext, tmp_path: Path) -> None:
    big = tmp_path / "k3s"
    with big.open("wb") as handle:
        handle.truncate(SNAPSHOT_MAX + 1)
    assert ctx.add_file("/appliance/bin/k3s", big).local_path == big


def test_add_tree_keeps_relative_paths(ctx: BuildContext, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "c.txt").write_text("c")
    (tree / "top.txt").write_text("t")
    added = ctx.add_tree("/appliance/", tree)
    assert [f.iso_path for f in added] == ["/appliance/a/b/c.txt", "/appliance/top.txt"]


@pytest.mark.parametrize("bad", ["relative/path", "/a/../etc/passwd"])
def test_iso_paths_must_be_absolute_and_plain(ctx: BuildContext, tmp_path: Path, bad: str) -> None:
    local = tmp_path / "f"
    local.write_text("x")
    with pytest.raises(ValueError, match="absolute"):
        ctx.add_file(bad, local)


def test_a_verified_file_is_taken_by_its_digest_and_refused_once_it_changed(
    ctx: BuildContext, tmp_path: Path
) -> None:
    big = tmp_path / "airgap.tar.zst"
    big.write_bytes(b"verified bytes" * (SNAPSHOT_MAX // 14 + 1))  # mapped in place
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    record = ctx.add_file("/appliance/k3s/images/airgap.tar.zst", big, sha256=digest)
    assert (record.sha256, record.local_path) == (digest, big)
    assert record.md5 == hashlib.md5(big.read_bytes(), usedforsecurity=False).hexdigest()

    with big.open("r+b") as handle:  # one byte flipped after verification
        handle.write(b"V")
    with pytest.raises(VerificationError, match=r"airgap\.tar\.zst: sha256 [0-9a-f]{64}, but"):
        ctx.add_file("/appliance/k3s/images/other.tar.zst", big, sha256=digest)
    assert "/appliance/k3s/images/other.tar.zst" not in ctx.files
