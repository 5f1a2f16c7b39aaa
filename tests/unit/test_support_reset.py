"""reset-data's plan against in-memory fakes: what it lists, in which order, and when it
refuses; removing a tree never follows a symlink out of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from host_service.kube import KubeError
from host_service.settings import Settings, default_settings
from host_service.support.reset import ResetRefused, check_removable, make_plan, remove_tree
from tests.fixtures.host_service import FakeKube


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = default_settings(tmp_path)
    settings.paths.state.mkdir(parents=True)
    for name in ("setup-token", "setup-inputs.json", "host-service.lock", "session-key"):
        (settings.paths.state / name).write_text("x")
    (settings.paths.state / "values").mkdir()
    return settings


def kubeconfig(settings: Settings) -> None:
    settings.paths.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    settings.paths.kubeconfig.write_text("apiVersion: v1\n")


def obj(kind: str, name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    api = {
        "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
        "OCIRepository": "source.toolkit.fluxcd.io/v1",
        "HelmRelease": "helm.toolkit.fluxcd.io/v2",
    }.get(kind, "v1")
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def test_without_k3s_only_the_host_is_reset(settings: Settings) -> None:
    plan = make_plan(settings, FakeKube())
    assert plan.cluster == []
    assert plan.cluster_note is not None
    names = [p.name for p in plan.files]
    assert names == ["session-key", "setup-inputs.json", "setup-token", "values"]
    text = "\n".join(plan.lines())
    assert "k3s was never started here" in text
    assert "rotate the setup token" in text


def test_the_plan_lists_source_first_then_releases_claims_volumes_namespaces(
    settings: Settings,
) -> None:
    kubeconfig(settings)
    storage = settings.paths.root / "var/lib/rancher/k3s/storage"
    data = storage / "pvc-1_msp_data"
    data.mkdir(parents=True)
    (data / "file").write_bytes(b"12345")
    (storage / "pvc-2_kube-system_other").mkdir()
    kube = FakeKube()
    for item in (
        obj("Kustomization", "alga-appliance", "flux-system"),
        obj("OCIRepository", "alga-appliance", "flux-system"),
        obj("HelmRelease", "db", "alga-system"),
        obj("PersistentVolumeClaim", "data", "msp",
            spec={"resources": {"requests": {"storage": "8Gi"}}}),
        obj("PersistentVolume", "pvc-1", spec={
            "claimRef": {"namespace": "msp", "name": "data"},
            "hostPath": {"path": "/var/lib/rancher/k3s/storage/pvc-1_msp_data"}}),
        obj("PersistentVolume", "pvc-2", spec={
            "claimRef": {"namespace": "kube-system", "name": "other"},
            "hostPath": {"path": "/var/lib/rancher/k3s/storage/pvc-2_kube-system_other"}}),
        obj("Namespace", "msp"),
        obj("Namespace", "alga-system"),
        obj("Secret", "alga-appliance-proxy", "flux-system"),
    ):  # fmt: skip
        kube.put(item)
    plan = make_plan(settings, kube)
    assert [d.label for d in plan.cluster] == [
        "Kustomization flux-system/alga-appliance",
        "OCIRepository flux-system/alga-appliance",
        "HelmRelease alga-system/db",
        "PersistentVolumeClaim msp/data",
        "PersistentVolume pvc-1",
        "Namespace msp",
        "Namespace alga-system",
        "Secret flux-system/alga-appliance-proxy",
    ]
    assert plan.volumes == [(data, "volume data, 5 bytes")]
    assert plan.claimed_volumes == ("pvc-1",)
    assert "8Gi" in plan.cluster[3].detail


def test_an_unreachable_cluster_refuses_the_whole_reset(settings: Settings) -> None:
    kubeconfig(settings)

    class Down(FakeKube):
        def readyz(self) -> str:
            raise KubeError("connection refused", argv=["kubectl"])

    with pytest.raises(ResetRefused, match="not reachable") as caught:
        make_plan(settings, Down())
    assert "nothing was deleted" in str(caught.value.hint)


def test_remove_tree_unlinks_symlinks_without_following_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "sub/file").write_text("x")
    (victim / "link-dir").symlink_to(outside)
    (victim / "sub/link-file").symlink_to(outside / "keep")
    remove_tree(victim)
    assert not victim.exists()
    assert (outside / "keep").read_text() == "precious"
    remove_tree(victim)  # already gone: nothing to do


def _mountinfo(tmp_path: Path, *points: Path) -> Path:
    """A mount table (the format of /proc/self/mountinfo) listing ``points``; a space in a
    path is written as the kernel writes it, \\040."""
    lines = ["22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw"]
    lines += [
        f"{40 + i} 22 0:{50 + i} / {str(p).replace(' ', chr(92) + '040')} rw shared:{9 + i} "
        "- tmpfs tmpfs rw"
        for i, p in enumerate(points)
    ]
    table = tmp_path / "mountinfo"
    table.write_text("\n".join(lines) + "\n")
    return table


def _tree(top: Path) -> list[Path]:
    (top / "a b" / "deep").mkdir(parents=True)
    (top / "a b" / "deep" / "data").write_text("kept")
    (top / "first").write_text("kept")
    return sorted(top.rglob("*"))


@pytest.mark.parametrize("where", ["a b", "a b/deep"])
def test_a_mount_below_the_tree_deletes_nothing(tmp_path: Path, where: str) -> None:
    # A bind mount shares its source's device: only the mount table shows it. It said so
    # after deleting whatever the walk reached first (the mounted files among them).
    top = tmp_path / "volume"
    before = _tree(top)
    table = _mountinfo(tmp_path, Path("/elsewhere"), (top / where).resolve())
    with pytest.raises(ResetRefused) as refused:
        remove_tree(top, mountinfo=table)
    assert refused.value.message == (
        f"{(top / where).resolve()} is a mount point; not deleting across file systems"
    )
    assert (
        refused.value.hint == f"nothing in {top} was deleted: unmount it, then run reset-data again"
    )
    assert sorted(top.rglob("*")) == before


def test_mounts_beside_or_at_the_tree_do_not_stop_it(tmp_path: Path) -> None:
    top = tmp_path / "volume"
    _tree(top)
    beside = tmp_path / "volume-2"
    table = _mountinfo(tmp_path, tmp_path, top.resolve(), beside.resolve())
    check_removable(top, mountinfo=table)
    remove_tree(top, mountinfo=table)
    assert not top.exists()


def test_an_unreadable_mount_table_leaves_the_device_check(tmp_path: Path) -> None:
    top = tmp_path / "volume"
    _tree(top)
    remove_tree(top, mountinfo=tmp_path / "no-such-mountinfo")
    assert not top.exists()
