"""Flux config bundle: exact media types, reproducible bytes, OCI layout round trip."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from isobuild.errors import ConfigError, OutputExistsError, VerificationError
from isobuild.release.bundle import (
    FLUX_CONFIG_MEDIA_TYPE,
    FLUX_CONTENT_MEDIA_TYPE,
    Artifact,
    build_bundle,
    read_layout,
    write_layout,
)
from isobuild.resources import FLUX_DIR


def content_names(artifact: Artifact) -> list[str]:
    """The file names inside the bundle's content layer, in archive order."""
    with tarfile.open(fileobj=io.BytesIO(artifact.layers[0].data), mode="r:gz") as tar:
        return [m.name for m in tar.getmembers()]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "flux"
    shutil.copytree(FLUX_DIR, root)
    return root


def test_manifest_is_what_flux_expects() -> None:
    bundle = build_bundle(FLUX_DIR)
    document = bundle.manifest_document
    assert document["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert document["config"]["mediaType"] == FLUX_CONFIG_MEDIA_TYPE
    assert [layer["mediaType"] for layer in document["layers"]] == [FLUX_CONTENT_MEDIA_TYPE]
    assert bundle.digest.startswith("sha256:")
    names = content_names(bundle)
    assert "base/kustomization.yaml" in names
    assert "profiles/single-node/kustomization.yaml" in names
    assert names == sorted(names)


def test_same_tree_same_digest_whatever_the_checkout(tree: Path) -> None:
    first = build_bundle(tree)
    for i, path in enumerate(sorted(tree.rglob("*"))):
        os.utime(path, (1_000_000 + i * 7919, 1_700_000_000 - i * 104729))
        if path.is_file():
            path.chmod(0o600 if i % 2 else 0o755)
    second = build_bundle(tree)
    assert second.layers[0].data == first.layers[0].data
    assert second.digest == first.digest == build_bundle(FLUX_DIR).digest


def test_content_change_changes_the_digest(tree: Path) -> None:
    before = build_bundle(tree).digest
    (tree / "base/namespaces.yaml").write_text(
        "# changed\n" + (tree / "base/namespaces.yaml").read_text()
    )
    assert build_bundle(tree).digest != before


def test_entries_have_fixed_metadata(tree: Path) -> None:
    layer = build_bundle(tree).layers[0].data
    assert layer[4:8] == b"\0\0\0\0", "gzip header mtime is zero"
    assert layer[3] & 0x08 == 0, "gzip header carries no file name"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        for member in tar.getmembers():
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
                0, 0, 0, "", "",
            )  # fmt: skip
            assert member.mode == (0o755 if member.isdir() else 0o644)


def test_hidden_files_are_left_out_and_symlinks_refused(tree: Path) -> None:
    before = build_bundle(tree).digest
    (tree / ".editorconfig").write_text("x")
    (tree / "base/.releases.yaml.swp").write_text("x")
    (tree / ".git").mkdir()
    (tree / ".git/HEAD").write_text("x")
    assert build_bundle(tree).digest == before
    (tree / "base/link.yaml").symlink_to(tree / "base/namespaces.yaml")
    with pytest.raises(ConfigError, match=r"base/link\.yaml: not a regular file"):
        build_bundle(tree)


def test_layout_round_trip(tmp_path: Path) -> None:
    bundle = build_bundle(FLUX_DIR)
    out = tmp_path / "bundle.tar"
    write_layout(bundle, out, tag="1.4.0", force=False)
    again = read_layout(out)
    assert again.digest == bundle.digest
    assert again.layers[0].data == bundle.layers[0].data
    with pytest.raises(OutputExistsError):
        write_layout(bundle, out, force=False)
    first = out.read_bytes()
    write_layout(bundle, out, tag="1.4.0", force=True)
    assert out.read_bytes() == first, "the layout file is reproducible too"


def test_a_directory_where_the_layout_goes_is_kept_even_with_force(tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar"
    out.mkdir()
    (out / "keep").write_text("precious")
    with pytest.raises(ConfigError, match="is a directory, where the output file goes"):
        write_layout(build_bundle(FLUX_DIR), out, force=True)
    assert (out / "keep").read_text() == "precious"


def test_tampered_layout_is_refused(tmp_path: Path) -> None:
    bundle = build_bundle(FLUX_DIR)
    out = tmp_path / "bundle.tar"
    write_layout(bundle, out, force=False)
    data = bytearray(out.read_bytes())
    layer_name = f"blobs/sha256/{bundle.layers[0].digest.removeprefix('sha256:')}".encode()
    header = data.find(layer_name)
    data[header + 512 + 100] ^= 0x01  # a byte of the layer blob's content
    out.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="digest mismatch: expected sha256:"):
        read_layout(out)
