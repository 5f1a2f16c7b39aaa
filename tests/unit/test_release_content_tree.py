"""The flux/ tree as the check, render and the bundle read it: one file list (hidden files
left out, symlinks refused), UTF-8 only, bounded nesting, one version per chart; and bundle
files read back with one line per mistake."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from host_service.release import SERVICES
from isobuild.errors import ConfigError, ToolError
from isobuild.release.bundle import (
    build_bundle,
    read_layout,
    tree_entries,
    write_layout,
)
from isobuild.release.flux_check import (
    BuiltObject,
    Overlay,
    SchemaChecker,
    build_overlay,
    chart_versions,
    check_overlays,
    profile_values_problems,
)
from isobuild.release.render import profile_values
from isobuild.resources import FLUX_DIR

DEEP = "x: " + "[" * 5000 + "]" * 5000 + "\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "flux"
    shutil.copytree(FLUX_DIR, root)
    return root


class RecordingKustomizer:
    """Records the files of the tree kustomize would build; prints ``output``."""

    def __init__(self, output: str = "", error: str | None = None) -> None:
        self.output = output
        self.error = error
        self.files: list[str] = []

    def build(self, directory: Path) -> str:
        root = directory.parent  # the copy of flux/ ("base" is one level down)
        self.files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        if self.error is not None:
            raise ToolError(self.error.replace("ROOT", str(root)))
        return self.output


# -- one file list --------------------------------------------------------------------------


def test_the_check_builds_exactly_the_files_the_bundle_ships(tree: Path) -> None:
    (tree / "base/.extra.yaml").write_text("apiVersion: v1\nkind: Namespace\n")
    (tree / ".git").mkdir()
    (tree / ".git/HEAD").write_text("ref: refs/heads/main\n")
    kustomizer = RecordingKustomizer()
    build_overlay(tree, "base", kustomizer)
    shipped = [name for name, path in tree_entries(tree) if path.is_file()]
    with tarfile.open(fileobj=io.BytesIO(build_bundle(tree).layers[0].data), mode="r:gz") as tar:
        packed = [m.name for m in tar.getmembers() if m.isfile()]
    assert kustomizer.files == shipped == packed
    assert "base/.extra.yaml" not in kustomizer.files


def test_a_hidden_file_kustomize_cannot_find_is_named_in_the_hint(tree: Path) -> None:
    error = "accumulating resources from '.extra.yaml': lstat ROOT/base/.extra.yaml: no such file"
    (tree / "base/.extra.yaml").write_text("apiVersion: v1\nkind: Namespace\n")
    with pytest.raises(ConfigError) as caught:
        build_overlay(tree, "base", RecordingKustomizer(error=error))
    assert str(caught.value).startswith(f"{tree / 'base'}: kustomize build failed: ")
    assert f"lstat {tree}/base/.extra.yaml" in str(caught.value)
    assert caught.value.hint == (
        "base/.extra.yaml is hidden: the bundle leaves hidden files out, so Flux would not find it"
    )


def test_a_symlink_is_refused_by_the_check_as_by_the_bundle(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: from outside the tree\n")
    link = tree / "profiles/single-node/values/redis.yaml"
    link.unlink()
    link.symlink_to(outside)
    for refuse in (
        lambda: build_overlay(tree, "base", RecordingKustomizer()),
        lambda: profile_values(tree, "single-node"),
        lambda: build_bundle(tree),
    ):
        with pytest.raises(ConfigError, match=r"values/redis\.yaml: not a regular file") as caught:
            refuse()
        assert "secret" not in str(caught.value)


def test_render_takes_only_the_values_files_the_bundle_ships(tree: Path) -> None:
    (tree / "profiles/single-node/values/.db.yaml").write_text("replicaCount: 9\n")
    values = profile_values(tree, "single-node")
    assert sorted(values) == sorted(f"{s}.single-node.yaml" for s in SERVICES)
    assert "replicaCount: 9" not in values["db.single-node.yaml"]


# -- UTF-8 and nesting ----------------------------------------------------------------------


def test_a_kustomization_that_is_not_utf8_is_named(tree: Path) -> None:
    kfile = tree / "base/kustomization.yaml"
    lines = kfile.read_bytes().count(b"\n")
    kfile.write_bytes(kfile.read_bytes() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        build_overlay(tree, "base", RecordingKustomizer())
    assert str(caught.value) == f"{kfile}: not UTF-8 (byte 0xe9 on line {lines + 1})"
    assert caught.value.hint == "save the file as UTF-8"


def test_a_deeply_nested_kustomization_is_named(tree: Path) -> None:
    kfile = tree / "base/kustomization.yaml"
    kfile.write_text(kfile.read_text() + DEEP)
    with pytest.raises(ConfigError) as caught:
        build_overlay(tree, "base", RecordingKustomizer())
    assert str(caught.value) == f"{kfile}: too deeply nested"


def test_deeply_nested_kustomize_output_is_named(tree: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_overlay(tree, "base", RecordingKustomizer(output=DEEP))
    assert str(caught.value) == f"{tree / 'base'}: an object is too deeply nested"


def _profile() -> Overlay:
    return Overlay(
        "profiles/single-node",
        [
            BuiltObject({"kind": "HelmRelease", "metadata": {"name": s}}, f"base/releases/{s}.yaml")
            for s in SERVICES
        ],
    )


def test_values_files_not_utf8_or_too_deep_are_named(tree: Path) -> None:
    values = tree / "profiles/single-node/values"
    (values / "redis.yaml").write_bytes(b"replicaCount: 1\nname: caf\xe9\n")
    (values / "db.yaml").write_text(DEEP)
    (values / "temporal.yaml").write_text("x: " + "[" * 100 + "]" * 100 + "\n")
    (values / ".pgbouncer.yaml.swp").write_text("not for the bundle")
    assert [str(p) for p in profile_values_problems(tree, _profile())] == [
        "profiles/single-node/values/db.yaml: too deeply nested (more than 100 levels)",
        "profiles/single-node/values/redis.yaml: not UTF-8 (byte 0xe9 on line 2)",
        "profiles/single-node/values/temporal.yaml: too deeply nested (more than 100 levels)",
    ]


def test_render_names_a_values_file_that_is_not_utf8(tree: Path) -> None:
    path = tree / "profiles/single-node/values/redis.yaml"
    path.write_bytes(b"# caf\xe9\nreplicaCount: 1\n")
    with pytest.raises(ConfigError) as caught:
        profile_values(tree, "single-node")
    assert str(caught.value) == f"{path}: not UTF-8 (byte 0xe9 on line 1)"


# -- one version per chart ------------------------------------------------------------------


def _release(name: str, chart: str, version: str) -> BuiltObject:
    document = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": name,
            "namespace": "alga-system",
            "annotations": {"alga.appliance/chart-version": version},
        },
        "spec": {"chartRef": {"kind": "OCIRepository", "name": f"alga-chart-{chart}"}},
    }
    return BuiltObject(document, f"base/releases/{name}.yaml")


CONFLICT = (
    "base/releases/redis.yaml: HelmRelease alga-system/redis: "
    "metadata.annotations.alga.appliance/chart-version: chart 'db' at 0.2.0, but "
    "HelmRelease alga-system/db (base/releases/db.yaml) has it at 0.1.0: "
    "a release pins one version per chart"
)


def test_two_versions_of_one_chart_are_a_topology_problem(
    flux_schemas: SchemaChecker, tmp_path: Path
) -> None:
    overlay = Overlay("base", [_release("redis", "db", "0.2.0"), _release("db", "db", "0.1.0")])
    assert CONFLICT in [str(p) for p in check_overlays(tmp_path, [overlay], flux_schemas)]
    with pytest.raises(ConfigError) as caught:
        chart_versions(overlay)
    assert caught.value.problems == [CONFLICT]


def test_one_chart_at_one_version_is_pinned_once() -> None:
    overlay = Overlay(
        "base",
        [_release("db", "db", "0.1.0"), _release("db-copy", "db", "0.1.0"),
         _release("redis", "redis", "1.0.0")],
    )  # fmt: skip
    assert chart_versions(overlay) == {"db": "0.1.0", "redis": "1.0.0"}


# -- bundle files ---------------------------------------------------------------------------


def _layout(path: Path, index: bytes, blobs: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        members = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index}
        for name, data in {**members, **(blobs or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _refusal(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        read_layout(path)
    assert "\n" not in str(caught.value), "one line"
    return caught.value


@pytest.mark.parametrize(
    ("content", "detail"),
    [(b"", "empty file"), (b"hello\n", "truncated header"),
     (gzip.compress(bytes(range(256)) * 64, mtime=0), None)],
)  # fmt: skip
def test_a_bundle_that_is_not_a_tar_is_one_line(
    tmp_path: Path, content: bytes, detail: str | None
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(content)
    error = _refusal(path)
    assert str(error).startswith(f"{path}: not a tar archive (")
    if detail is not None:
        assert str(error) == f"{path}: not a tar archive ({detail})"
    assert error.hint == "pass the OCI layout tar `isobuild release bundle --output` wrote"


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "index.json: not valid JSON: too deeply nested"),
        (b'{"manifests":[{"digest":5}]}',
         "index.json: manifests[0].digest: expected sha256:<64 lowercase hex>, got 5"),
        (b'{"manifests":[5]}',
         "index.json: manifests[0]: expected a descriptor (a JSON object)"),
        (b'{"manifests":{}}', "index.json: manifests: expected a list of one descriptor"),
        (b"[]", "index.json: expected a JSON object, got list"),
        (json.dumps({"manifests": [{"digest": "sha256:" + "a" * 64}]}).encode(),
         f"index.json: manifests[0].digest: no blob sha256:{'a' * 64} in the layout"),
    ],
)  # fmt: skip
def test_a_malformed_index_names_the_key(tmp_path: Path, index: bytes, expected: str) -> None:
    path = _layout(tmp_path / "bundle.tar", index)
    assert str(_refusal(path)) == f"{path}: {expected}"


def _artifact_layout(tmp_path: Path, edit: Any) -> tuple[Path, str]:
    """A layout whose manifest document went through ``edit``."""
    from host_service.oci import sha256_digest

    good = tmp_path / "good.tar"
    write_layout(build_bundle(FLUX_DIR), good, force=True)
    with tarfile.open(good) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    index = json.loads(files.pop("index.json"))
    manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads(files.pop(manifest_name))
    edit(manifest)
    data = json.dumps(manifest).encode()
    digest = sha256_digest(data)
    index["manifests"][0]["digest"] = digest
    files.pop("oci-layout")
    files["blobs/sha256/" + digest.removeprefix("sha256:")] = data
    return _layout(tmp_path / "bundle.tar", json.dumps(index).encode(), files), digest


def test_a_malformed_manifest_names_the_key(tmp_path: Path) -> None:
    path, digest = _artifact_layout(tmp_path, lambda m: m["layers"][0].update(digest=7))
    assert str(_refusal(path)) == (
        f"{path}: manifest {digest}: layers[0].digest: expected sha256:<64 lowercase hex>, got 7"
    )
    path, digest = _artifact_layout(tmp_path, lambda m: m.pop("config"))
    assert str(_refusal(path)) == (
        f"{path}: manifest {digest}: config: expected a descriptor (a JSON object)"
    )
