"""The support bundle built against in-memory fakes: contents and manifest, canaries planted in
every secret place found nowhere in it, k3s down, the API hung, the size bound, 0600."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from host_service.kube import KubeError
from host_service.settings import Settings, settings_from_document
from host_service.support.archive import BundleWriter
from host_service.support.bundle import Limits, build_bundle
from host_service.support.cluster import LogLimits
from host_service.support.journal import JournalError
from host_service.support.redact import Redactor
from tests.fixtures.host_service import FakeKube, builder_document
from tests.fixtures.support import (
    Canaries,
    bundle_layers,
    manifest,
    members,
    plant_host_canaries,
    search,
)


@dataclass
class FakeJournal:
    """Implements ``Journal`` from fixed text per unit; records what it was asked."""

    text: dict[str, str] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    asked: list[tuple[str, float, int]] = field(default_factory=list)

    def read(self, unit: str, *, since_hours: float, max_bytes: int) -> str:
        self.asked.append((unit, since_hours, max_bytes))
        if unit in self.failing:
            raise JournalError("No journal files were found.")
        return self.text.get(unit, "")


def secret(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def pod(name: str, namespace: str, *containers: str, restarts: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": c, "image": f"img/{c}"} for c in containers]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": c, "restartCount": restarts} for c in containers],
        },
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = settings_from_document(
        builder_document("name: alga-appliance\nversion: 0.1.0\n"), root=tmp_path
    )
    settings.paths.build_info.parent.mkdir(parents=True)
    settings.paths.build_info.write_text(json.dumps({"name": "alga-appliance"}))
    return settings


def cluster_with_canaries(canaries: Canaries) -> FakeKube:
    """Generated app secrets, another Secret, a pod whose logs repeat them."""
    kube = FakeKube()
    postgres = str(canaries.add("postgres-password"))
    app = str(canaries.add("app-secret"))
    license_key = str(canaries.add("license-key"))
    kube.put(secret("alga-appliance-secrets", "msp", **{"postgres-password": postgres,
                                                          "app-secret": app}))  # fmt: skip
    kube.put(secret("alga-license", "msp", key=license_key))
    kube.put(pod("alga-core-0", "msp", "app", restarts=1))
    kube.put(
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "alga-core", "namespace": "alga-system"},
            "spec": {"values": {"license": str(canaries.add("helm-inline-value"))}},
            "status": {"history": [{"chartVersion": "1.0.0", "status": "deployed"}]},
        }
    )
    proxy = canaries.text("proxy-password")
    kube.add_log(
        "msp",
        "alga-core-0",
        f"connecting with {postgres}",
        f"proxy http://ops:{proxy}@proxy.invalid:3128",
        f"license {license_key} ok",
    )
    kube.previous_logs[("msp", "alga-core-0")] = [f"crashed; app secret was {app}"]
    return kube


def test_bundle_contents_manifest_and_no_canary_anywhere(settings: Settings) -> None:
    canaries = plant_host_canaries(settings)
    kube = cluster_with_canaries(canaries)
    token = canaries.text("setup-token")
    journal = FakeJournal(
        {"appliance-setup.service": f"login with {token}\nproxy {canaries.text('proxy-password')}"}
    )
    output = settings.paths.state / "support" / "b.tar.gz"
    result = build_bundle(settings, kube=kube, journal=journal, output=output)

    assert search(output, canaries) == []
    files = members(output)
    for expected in (
        "host/kernel.txt",
        "host/memory.txt",
        "host/disks.txt",
        "host/network.txt",
        "appliance/build-info.json",
        "appliance/setup.json",
        "k3s/kubeconfig-summary.txt",
        "k3s/k3s.service.env",
        "cluster/readyz.txt",
        "cluster/secrets.json",
        "helm/helmreleases.json",
        "workloads/pods.json",
        "logs/msp/alga-core-0/app.log",
        "logs/msp/alga-core-0/app.previous.log",
        "journal/appliance-setup.service.log",
        "manifest.json",
    ):
        assert expected in files, expected
    # What was planted is still recognisable as redacted, not silently dropped.
    assert b"<redacted>" in files["logs/msp/alga-core-0/app.log"]
    assert b"proxy.invalid:3128" in files["k3s/k3s.service.env"]
    setup = json.loads(files["appliance/setup.json"])["setup"]
    assert setup["app_url"] == "https://psa.example.com"
    secrets_listed = json.loads(files["cluster/secrets.json"])["items"]
    assert {s["metadata"]["name"] for s in secrets_listed} == {"alga-appliance-secrets",
                                                                "alga-license"}  # fmt: skip
    history = json.loads(files["helm/helmreleases.json"])["items"][0]["status"]["history"]
    assert history == [{"chartVersion": "1.0.0", "status": "deployed"}]
    for never in ("setup-token", "session-key", "setup-inputs.json", "k3s.yaml"):
        assert not any(name.endswith(never) for name in files), never

    document = manifest(output)
    listed = {f["path"] for f in document["files"]}
    assert set(files) - {"manifest.json"} <= listed
    for entry in document["files"]:
        assert entry["how"]
        if entry["status"] in ("collected", "truncated"):
            assert entry["bytes"] == len(files[entry["path"]])
    assert document["cluster"]["reachable"] is True
    assert document["redaction"]["known_values"] >= 8
    assert result.size == output.stat().st_size
    assert output.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in output.parent.iterdir()] == ["b.tar.gz"]  # no temp file left


class DownKube(FakeKube):
    """Every call fails like kubectl against a stopped k3s."""

    def _down(self) -> KubeError:
        return KubeError(
            "The connection to the server 127.0.0.1:6443 was refused",
            argv=["kubectl"],
            output="dial tcp 127.0.0.1:6443: connect: connection refused",
        )

    def readyz(self) -> str:
        raise self._down()

    def list(self, *args: Any, **kwargs: Any) -> Any:
        raise self._down()


def test_k3s_down_the_cluster_parts_say_so_and_the_rest_is_collected(settings: Settings) -> None:
    plant_host_canaries(settings)
    journal = FakeJournal({"k3s.service": "level=fatal msg=failed to start\n"})
    output = settings.paths.state / "b.tar.gz"
    build_bundle(settings, kube=DownKube(), journal=journal, output=output)
    document = manifest(output)
    assert document["cluster"]["reachable"] is False
    assert "connection refused" in document["cluster"]["error"]
    by_path = {f["path"]: f for f in document["files"]}
    for path in ("cluster/nodes.json", "helm/helmreleases.json", "logs/"):
        assert by_path[path]["status"] == "skipped"
        assert "not reachable" in by_path[path]["note"]
        assert "connection refused" in by_path[path]["note"]
    files = members(output)
    assert "failed to start" in files["journal/k3s.service.log"].decode()
    assert "host/memory.txt" in files


@dataclass
class HungKube(FakeKube):
    """The API accepts the connection and never answers (until the test lets it go)."""

    released: threading.Event = field(default_factory=threading.Event)

    def readyz(self) -> str:
        self.released.wait(10)
        raise KubeError("timed out", argv=["kubectl"])


@pytest.fixture
def hung() -> Iterator[HungKube]:
    kube = HungKube()
    yield kube
    kube.released.set()


def test_api_hung_the_bundle_still_comes_within_its_bound(
    settings: Settings, hung: HungKube
) -> None:
    output = settings.paths.state / "b.tar.gz"
    limits = Limits(cluster_seconds=0.2)
    build_bundle(settings, kube=hung, journal=FakeJournal(), output=output, limits=limits)
    document = manifest(output)
    assert document["cluster"]["reachable"] is None
    assert "did not answer within" in document["cluster"]["error"]
    by_path = {f["path"]: f for f in document["files"]}
    assert by_path["cluster/nodes.json"]["status"] == "skipped"
    assert "host/kernel.txt" in members(output)
    assert not hung.released.is_set()  # the bundle did not wait for the API


def test_journal_failure_is_recorded_not_fatal(settings: Settings) -> None:
    output = settings.paths.state / "b.tar.gz"
    journal = FakeJournal(failing={"k3s.service"})
    build_bundle(settings, kube=FakeKube(), journal=journal, output=output)
    by_path = {f["path"]: f for f in manifest(output)["files"]}
    assert by_path["journal/k3s.service.log"]["status"] == "failed"
    assert "No journal files" in by_path["journal/k3s.service.log"]["error"]
    assert "journal/k3s.service.log" in manifest(output)["failed"]
    assert {a[0] for a in journal.asked} == {
        "appliance-setup.service",
        "appliance-console-banner.service",
        "k3s.service",
    }


def test_size_bound_cuts_logs_first_and_says_what_was_cut(settings: Settings) -> None:
    kube = FakeKube()
    for i in range(6):
        kube.put(pod(f"worker-{i}", "msp", "app"))
        # Incompressible: random bytes as hex are still poor for deflate's bound check.
        kube.add_log("msp", f"worker-{i}", os.urandom(300_000).hex())
    output = settings.paths.state / "b.tar.gz"
    limits = Limits(max_bytes=1024 * 1024, logs=LogLimits(bytes=2 * 1024 * 1024))
    build_bundle(settings, kube=kube, journal=FakeJournal(), output=output, limits=limits)
    assert output.stat().st_size <= 1024 * 1024
    document = manifest(output)
    assert document["cut"], "the manifest says what was cut"
    statuses = {f["path"]: f["status"] for f in document["files"]}
    assert statuses["host/kernel.txt"] == "collected"
    assert "truncated" in statuses.values() or "skipped" in statuses.values()
    cut_logs = [c for c in document["cut"] if c.startswith("logs/")]
    assert cut_logs
    # Cut logs keep their newest lines (the tail).
    files = members(output)
    for path, status in statuses.items():
        if status == "truncated" and path.startswith("logs/"):
            original = "".join(f"{line}\n" for line in kube.pod_logs[("msp", path.split("/")[2])])
            original_bytes = original.encode()
            assert original_bytes.endswith(files[path])


def test_writer_never_exceeds_its_bound_with_incompressible_data() -> None:
    out = io.BytesIO()
    writer = BundleWriter(out=out, redactor=Redactor(), max_bytes=512 * 1024, prefix="b", mtime=0.0)
    for i in range(20):
        writer.add(f"blob-{i}.bin", os.urandom(100_000), how="test")
    writer.close({"schema": "test"})
    assert len(out.getvalue()) <= 512 * 1024
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(out.getvalue()))) as tar:
        names = tar.getnames()
        assert names[-1] == "b/manifest.json"
        assert all(m.mode == 0o600 for m in tar.getmembers())
    statuses = [e.status for e in writer.entries]
    assert "skipped" in statuses
    assert statuses[0] == "collected"


def test_every_member_and_the_manifest_go_through_the_redactor() -> None:
    out = io.BytesIO()
    writer = BundleWriter(
        out=out, redactor=Redactor(["sekrit-value"]), max_bytes=1024 * 1024, prefix="b", mtime=0
    )
    writer.add("a.txt", "x sekrit-value y", how="test")
    writer.failed("b.txt", how="test", error="failed because sekrit-value")
    writer.close({"note": "sekrit-value"})
    assert all(b"sekrit-value" not in data for data in bundle_layers_bytes(out.getvalue()))


def bundle_layers_bytes(data: bytes) -> list[bytes]:
    stream = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        contents = [tar.extractfile(m).read() for m in tar.getmembers()]  # type: ignore[union-attr]
    return [data, stream, *contents]


def test_layers_helper_sees_every_member(settings: Settings) -> None:
    output = settings.paths.state / "b.tar.gz"
    build_bundle(settings, kube=FakeKube(), journal=FakeJournal(), output=output)
    layers = bundle_layers(output)
    assert "<compressed file>" in layers
    assert "<tar stream>" in layers
    assert any(name.endswith("/manifest.json") for name in layers)
