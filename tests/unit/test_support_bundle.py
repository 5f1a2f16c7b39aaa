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

from host_service.__main__ import main
from host_service.kube import KubeError
from host_service.settings import Settings, settings_from_document
from host_service.support.archive import BundleWriter
from host_service.support.bundle import (
    Limits,
    build_bundle,
    bundle_dir,
    free_bundle_path,
    list_bundles,
    prune,
)
from host_service.support.cluster import LogLimits
from host_service.support.commands import bundle_output
from host_service.support.inventory import secret_values
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


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("- a\n", "not a kubeconfig: the top level: expected a mapping, got a list"),
        ("clusters: [{cluster: x}]\n", "clusters[0].cluster: expected a mapping, got a string"),
        ("users: [{name: u, user: tok}]\n", "users[0].user: expected a mapping, got a string"),
        ("clusters: 5\n", "clusters: expected a list, got a number"),
        ("users: 5\n", "users: expected a list, got a number"),  # also stopped the inventory
        ("users:\n- {name: u, user: {token: Zq9w4\n", "not YAML: "),
    ],
)
def test_a_damaged_kubeconfig_is_a_failed_entry_not_a_stopped_bundle(
    settings: Settings, text: str, why: str
) -> None:
    kubeconfig = settings.paths.kubeconfig
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text(text)
    output = settings.paths.state / "b.tar.gz"
    build_bundle(settings, kube=FakeKube(), journal=FakeJournal(), output=output)
    entry = {f["path"]: f for f in manifest(output)["files"]}["k3s/kubeconfig-summary.txt"]
    assert entry["status"] == "failed"
    assert entry["error"].startswith(f"{kubeconfig}: ")
    assert why in entry["error"]
    assert entry["error"].endswith("(k3s writes the file again when it starts)")
    assert "Zq9w4" not in entry["error"]  # PyYAML's message quotes the line: not here
    assert "host/kernel.txt" in members(output)


def test_a_kubeconfig_summary_names_servers_and_credential_kinds_only(settings: Settings) -> None:
    kubeconfig = settings.paths.kubeconfig
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text(
        "clusters: [{name: d, cluster: {server: 'https://127.0.0.1:6443'}}, {name: e}]\n"
        "users: [{name: admin, user: {token: Zq9w4-t0k3n, client-key-data: a2V5}}]\n"
    )
    kubeconfig.chmod(0o600)
    output = settings.paths.state / "b.tar.gz"
    build_bundle(settings, kube=FakeKube(), journal=FakeJournal(), output=output)
    summary = members(output)["k3s/kubeconfig-summary.txt"].decode()
    assert summary == (
        f"path: {kubeconfig}\nmode: -rw------- (0600)\n"
        "servers: https://127.0.0.1:6443, (none)\n"
        "credential kinds (values never collected): admin: client-key-data, token\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '"str"',
        '{"app_url": "https://x", "no_proxy": 5}',
        '{"app_url": "https://x", "channel": "stable", "no_proxy": 5}',
        '{"app_url": "https://x", "chan',
    ],
)
def test_setup_inputs_of_the_wrong_shape_are_a_failed_entry_not_a_stopped_bundle(
    settings: Settings, text: str
) -> None:
    # Needs intent.IntentStore.load to raise IntentUnreadable (a ServiceError) for any
    # content that is not setup inputs; before that a TypeError stopped the bundle.
    settings.paths.state.mkdir(parents=True)
    settings.paths.intent_file.write_text(text)
    output = settings.paths.state / "b.tar.gz"
    build_bundle(settings, kube=FakeKube(), journal=FakeJournal(), output=output)
    document = manifest(output)
    entry = {f["path"]: f for f in document["files"]}["appliance/setup.json"]
    assert entry["status"] == "failed"
    assert entry["error"].startswith(f"{settings.paths.intent_file}: ")
    assert "appliance/setup.json" in document["failed"]
    assert not any("setup-inputs" in name for name in members(output))


def test_damaged_setup_inputs_still_have_their_proxy_password_redacted(settings: Settings) -> None:
    canaries = plant_host_canaries(settings)
    password = canaries.text("proxy-password")
    settings.paths.intent_file.write_text(
        json.dumps({"app_url": "https://psa.example.com", "channel": "stable",
                    "proxy": f"http://ops:{password}@proxy.invalid:3128", "no_proxy": 5})
    )  # fmt: skip
    journal = FakeJournal({"appliance-setup.service": f"proxy password {password} rejected"})
    output = settings.paths.state / "b.tar.gz"
    build_bundle(settings, kube=FakeKube(), journal=journal, output=output)
    assert search(output, canaries) == []
    assert "<redacted>" in members(output)["journal/appliance-setup.service.log"].decode()


def test_a_secret_value_with_a_trailing_newline_is_redacted_without_it(
    settings: Settings,
) -> None:
    # `kubectl create secret --from-file` keeps the file's newline; the program prints the
    # value without it.
    canaries = Canaries()
    password = str(canaries.add("db-password"))
    kube = FakeKube()
    kube.put(secret("db-credentials", "msp", password=f"{password}\n", user="msp\n"))
    kube.put(pod("db-0", "msp", "db"))
    kube.add_log("msp", "db-0", f"connecting as msp with password {password} to msp-db")
    output = settings.paths.state / "b.tar.gz"
    build_bundle(settings, kube=kube, journal=FakeJournal(), output=output)
    assert search(output, canaries) == []
    log = members(output)["logs/msp/db-0/db.log"].decode()
    # "msp" trimmed is shorter than any value redacted: it stays, and so does the text.
    assert "connecting as msp with password <redacted> to msp-db" in log


def test_secret_values_add_the_trimmed_form_only_when_long_enough() -> None:
    objects = [secret("s", "msp", a="Hunter2Canary99\n", b="msp\n", c=" \n", d="plain")]
    assert secret_values(objects) == ["Hunter2Canary99\n", "Hunter2Canary99", "msp\n", "plain"]


def test_state_files_are_collected_only_when_regular_files_of_the_state_tree(
    settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "update").mkdir(parents=True)
    (outside / "shadow.yaml").write_text("root: OUTSIDE-CANARY-1\n")
    (outside / "update" / "check.json").write_text('{"x": "OUTSIDE-CANARY-2"}\n')
    values = settings.paths.state / "values"
    values.mkdir(parents=True)
    (values / "core.yaml").write_text("replicas: 1\n")
    (values / "x.yaml").symlink_to(outside / "shadow.yaml")
    (values / "dir.yaml").mkdir()
    (settings.paths.state / "update").mkdir()
    (settings.paths.state / "update" / "linked").symlink_to(outside / "update")
    output = tmp_path / "b.tar.gz"
    build_bundle(settings, kube=FakeKube(), journal=FakeJournal(), output=output)

    files = members(output)
    assert files["appliance/state/values/core.yaml"] == b"replicas: 1\n"
    assert all(b"OUTSIDE-CANARY" not in data for data in bundle_layers(output).values())
    by_path = {f["path"]: f for f in manifest(output)["files"]}
    link = by_path["appliance/state/values/x.yaml"]
    assert link["status"] == "skipped"
    assert link["note"].startswith(f"a symbolic link to {outside / 'shadow.yaml'}: not followed")
    below = by_path["appliance/state/update/linked/check.json"]
    assert below["status"] == "skipped"
    assert below["note"].startswith(
        f"below the symbolic link {settings.paths.state / 'update/linked'} to {outside / 'update'}"
    )
    directory = by_path["appliance/state/values/dir.yaml"]
    assert (directory["status"], directory["note"]) == (
        "skipped",
        "a directory: only regular files are collected",
    )


def _bundles(directory: Path, *names: str) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"bundle")
    return list(names)


def test_prune_keeps_the_newest_by_time_then_number_not_by_name(settings: Settings) -> None:
    # The two oldest share a second: the one without a suffix came first.
    oldest, second, *newer = _bundles(
        bundle_dir(settings),
        "support-bundle-20250101-120000.tar.gz",
        "support-bundle-20250101-120000-2.tar.gz",
        "support-bundle-20250101-120001.tar.gz",
        "support-bundle-20250101-120002.tar.gz",
        "support-bundle-20250102-080000.tar.gz",
        "support-bundle-20250103-080000.tar.gz",
    )
    prune(settings)
    kept = [p.name for p in list_bundles(settings)]
    assert kept == [*reversed(newer), second]
    assert not (bundle_dir(settings) / oldest).exists()


def test_a_tenth_bundle_in_one_second_is_newer_than_the_second(settings: Settings) -> None:
    names = _bundles(
        bundle_dir(settings),
        "support-bundle-20250101-120000.tar.gz",
        "support-bundle-20250101-120000-2.tar.gz",
        "support-bundle-20250101-120000-10.tar.gz",
    )
    assert [p.name for p in list_bundles(settings)] == [names[2], names[1], names[0]]


def test_a_bundle_into_a_directory_is_named_against_that_directory_only(
    settings: Settings, tmp_path: Path
) -> None:
    now = 1_735_732_800.0  # 2025-01-01 12:00:00 UTC
    taken = tmp_path / "out" / "support-bundle-20250101-120000.tar.gz"
    _bundles(taken.parent, taken.name)
    # The state directory cannot be made (a file stands there, as on a broken state disk).
    settings.paths.state.parent.mkdir(parents=True)
    settings.paths.state.write_text("not a directory")
    path = bundle_output(settings, taken.parent, now)
    assert path == taken.parent / "support-bundle-20250101-120000-2.tar.gz"
    assert settings.paths.state.read_text() == "not a directory"
    assert free_bundle_path(tmp_path, now).name == "support-bundle-20250101-120000.tar.gz"


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--journal-hours", "nan", "a number of hours above 0, at most 87600, got nan"),
        ("--journal-hours", "inf", "a number of hours above 0, at most 87600, got inf"),
        ("--journal-hours", "-5", "a number of hours above 0, at most 87600, got -5"),
        ("--journal-hours", "0", "a number of hours above 0, at most 87600, got 0"),
        ("--cluster-seconds", "inf", "a number of seconds above 0, at most 86400, got inf"),
        ("--cluster-seconds", "nan", "a number of seconds above 0, at most 86400, got nan"),
        ("--cluster-seconds", "-1", "a number of seconds above 0, at most 86400, got -1"),
        ("--cluster-seconds", "1e300", "a number of seconds above 0, at most 86400, got 1e+300"),
    ],
)
def test_a_time_option_out_of_range_is_one_line_naming_it_before_anything_is_collected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, expected: str
) -> None:
    output = tmp_path / "out" / "b.tar.gz"
    argv = ["support-bundle", "--root", str(tmp_path / "root"), "--output", str(output),
            "--journal-socket", str(tmp_path / "no-journal"), option, value]  # fmt: skip
    assert main(argv) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if not line.startswith("note: ")]
    assert errors == [f"error: {option}: expected {expected}"]
    assert "collecting" not in captured.out
    assert not output.parent.exists()


def test_every_option_out_of_range_is_named_on_the_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["support-bundle", "--root", str(tmp_path), "--max-size-mb", "0",
            "--journal-hours", "inf", "--journal-socket", str(tmp_path / "no-journal")]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: --max-size-mb: at least 1, got 0; --journal-hours: expected a number of hours "
        "above 0, at most 87600, got inf"
    )
