"""The k3s step against fakes of systemd, the k3s binary and the cluster: payload checks, the
files it writes, when it reloads, restarts or starts k3s, and every way of waiting and failing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from host_service import k3s_files
from host_service.command import CommandError
from host_service.intent import SetupIntent
from host_service.settings import ImageArchive, K3s, Timeouts
from host_service.steps import k3s
from host_service.steps.context import StepContext, StepFailed
from host_service.systemd import SystemdError, UnitState
from tests.fixtures.host_service import FakeKube
from tests.unit.test_host_steps import context

VERSION = "v1.36.3+k3s1"
BINARY = b"#!/bin/sh\necho k3s\n"
IMAGES = b"image archive bytes"
SHA_IMAGES = hashlib.sha256(IMAGES).hexdigest()


class FakeSystemd:
    """k3s.service as systemd reports it; starting it writes the kubeconfig, as k3s does."""

    def __init__(self, kubeconfig: Path, *states: UnitState) -> None:
        self.kubeconfig = kubeconfig
        self.states = list(states) or [UnitState("active", "running")]
        self.calls: list[tuple[str, ...]] = []
        self.fail: dict[str, SystemdError] = {}
        self.log = 'k3s[1]: level=fatal msg="no space left"'

    def _maybe_fail(self, verb: str) -> None:
        if verb in self.fail:
            raise self.fail[verb]

    def daemon_reload(self) -> None:
        self.calls.append(("daemon-reload",))
        self._maybe_fail("daemon-reload")

    @staticmethod
    def _unit(unit: str) -> None:
        assert unit == "k3s.service", f"asked about {unit!r}"

    def enable_now(self, unit: str) -> None:
        self._unit(unit)
        self.calls.append(("enable-now", unit))
        self._maybe_fail("enable-now")
        self._start()

    def restart(self, unit: str) -> None:
        self._unit(unit)
        self.calls.append(("restart", unit))
        self._maybe_fail("restart")
        self._start()

    def _start(self) -> None:
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.write_text("apiVersion: v1\n")
        self.kubeconfig.chmod(0o644)
        self.states = [UnitState("active", "running")]

    def unit_state(self, unit: str) -> UnitState:
        self._unit(unit)
        self.calls.append(("state", unit))
        self._maybe_fail("state")
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def journal(self, unit: str, *, lines: int = 40) -> str:
        self._unit(unit)
        self.calls.append(("journal", unit))
        return self.log


class FakeK3s:
    def __init__(self, version: str = VERSION, error: CommandError | None = None) -> None:
        self.answer = version
        self.error = error
        self.asked: list[Path] = []

    def version(self, binary: Path) -> str:
        self.asked.append(binary)
        if self.error is not None:
            raise self.error
        return self.answer


def node(name: str, ready: str = "True") -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def payload(ctx: StepContext, *, manifest: bool = True) -> None:
    """The binary and one image archive as the installer leaves them."""
    paths = ctx.settings.paths
    paths.k3s_binary.parent.mkdir(parents=True, exist_ok=True)
    paths.k3s_binary.write_bytes(BINARY)
    paths.k3s_binary.chmod(0o755)
    paths.k3s_images.mkdir(parents=True, exist_ok=True)
    (paths.k3s_images / "airgap.tar.zst").write_bytes(IMAGES)
    if manifest:
        files = [
            "not an entry",
            {"path": "no install key"},
            {"install": "/usr/local/bin/other", "sha256": "0" * 64},
            {"install": "/usr/local/bin/k3s", "sha256": hashlib.sha256(BINARY).hexdigest()},
        ]
        paths.payload_manifest.parent.mkdir(parents=True, exist_ok=True)
        paths.payload_manifest.write_text(json.dumps({"files": files}))


def k3s_context(
    tmp_path: Path,
    *states: UnitState,
    kube: FakeKube | None = None,
    binary: FakeK3s | None = None,
    archives: tuple[ImageArchive, ...] = (ImageArchive(file="airgap.tar.zst", sha256=SHA_IMAGES),),
    version: str = VERSION,
    standin: bool = False,
    timeout: float = 60.0,
) -> tuple[StepContext, FakeSystemd, list[tuple[str, str | None]]]:
    if kube is None:
        kube = FakeKube()
        kube.put(node("appliance"))
    ctx, reports = context(tmp_path, kube=kube)
    settings = dataclasses.replace(
        ctx.settings,
        k3s=K3s(version=version, image_archives=archives),
        timeouts=Timeouts(poll_interval=0.0, k3s_ready=timeout, node_ready=timeout),
        standin=standin,
    )
    systemd = FakeSystemd(settings.paths.kubeconfig, *states)
    ctx = dataclasses.replace(ctx, settings=settings, systemd=systemd, k3s=binary or FakeK3s())
    payload(ctx)
    return ctx, systemd, reports


# -- hashing and the payload ---------------------------------------------------------------


def test_sha256_of_hashes_each_file_version(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    big = os.urandom(3 * 1024 * 1024 + 5)
    a.write_bytes(big)
    b.write_bytes(big[::-1])
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns))
    assert k3s.sha256_of(a) == hashlib.sha256(big).hexdigest()
    assert k3s.sha256_of(b) == hashlib.sha256(big[::-1]).hexdigest()  # same size and mtime
    a.write_bytes(b"new")
    assert k3s.sha256_of(a) == hashlib.sha256(b"new").hexdigest()


def test_the_manifest_sha256_is_the_entry_installed_at_the_path(tmp_path: Path) -> None:
    ctx, _, _ = k3s_context(tmp_path)
    paths = ctx.settings.paths
    assert k3s._manifest_sha256(ctx, paths.k3s_binary) == hashlib.sha256(BINARY).hexdigest()
    assert k3s._manifest_sha256(ctx, paths.k3s_images / "airgap.tar.zst") is None
    paths.payload_manifest.write_text("{broken")
    assert k3s._manifest_sha256(ctx, paths.k3s_binary) is None
    paths.payload_manifest.unlink()
    assert k3s._manifest_sha256(ctx, paths.k3s_binary) is None
    paths.payload_manifest.write_text("{}")
    assert k3s._manifest_sha256(ctx, paths.k3s_binary) is None


def test_a_complete_payload_has_no_problems(tmp_path: Path) -> None:
    ctx, _, _ = k3s_context(tmp_path)
    assert k3s.installed_problems(ctx) == []


def test_a_missing_or_unexecutable_or_replaced_binary(tmp_path: Path) -> None:
    ctx, _, _ = k3s_context(tmp_path)
    binary = ctx.settings.paths.k3s_binary
    binary.chmod(0o644)
    assert k3s.installed_problems(ctx) == [f"{binary}: not executable"]
    binary.chmod(0o755)
    binary.write_bytes(b"#!/bin/sh\necho evil\n")
    assert k3s.installed_problems(ctx) == [f"{binary}: sha256 differs from the payload manifest"]
    binary.unlink()
    binary.mkdir()
    assert k3s.installed_problems(ctx) == [f"{binary}: missing"]


def test_a_binary_the_manifest_does_not_list_is_not_checked(tmp_path: Path) -> None:
    ctx, _, _ = k3s_context(tmp_path)
    ctx.settings.paths.payload_manifest.write_text(json.dumps({"files": []}))
    ctx.settings.paths.k3s_binary.write_bytes(b"#!/bin/sh\necho other\n")
    assert k3s.installed_problems(ctx) == []


def test_listed_archives_must_be_there_with_their_digest(tmp_path: Path) -> None:
    archives = (
        ImageArchive(file="airgap.tar.zst", sha256="1" * 64),
        ImageArchive(file="extra.tar", sha256=SHA_IMAGES),
    )
    ctx, _, _ = k3s_context(tmp_path, archives=archives)
    images = ctx.settings.paths.k3s_images
    assert k3s.installed_problems(ctx) == [
        f"{images / 'airgap.tar.zst'}: sha256 differs from build-info.json",
        f"{images / 'extra.tar'}: missing",
    ]


@pytest.mark.parametrize(
    "name", ["a.tar", "a.tar.gz", "a.tgz", "a.tar.zst", "a.tar.lz4", "a.tar.bz2"]
)
def test_without_a_list_any_image_archive_will_do(tmp_path: Path, name: str) -> None:
    ctx, _, _ = k3s_context(tmp_path, archives=())
    images = ctx.settings.paths.k3s_images
    (images / "airgap.tar.zst").unlink()
    (images / "README").write_text("not an archive")
    assert k3s.installed_problems(ctx) == [f"{images}: no image archives"]
    (images / name).write_bytes(b"x")
    assert k3s.installed_problems(ctx) == []


def test_without_a_list_or_an_images_directory(tmp_path: Path) -> None:
    ctx, _, _ = k3s_context(tmp_path, archives=())
    images = ctx.settings.paths.k3s_images
    for path in images.iterdir():
        path.unlink()
    images.rmdir()
    assert k3s.installed_problems(ctx) == [f"{images}: no image archives"]


# -- run -------------------------------------------------------------------------------------


def test_a_first_run_writes_the_files_starts_k3s_and_waits_for_the_node(tmp_path: Path) -> None:
    ctx, systemd, reports = k3s_context(tmp_path, UnitState("inactive", "dead"))
    k3s.run(ctx)
    paths = ctx.settings.paths
    assert reports == [
        ("checking the k3s binary and image archives", None),
        ("binary and image archives verified", "1 image archive(s) verified"),
        (f"k3s {VERSION} installed", f"k3s {VERSION}"),
        ("writing config.yaml", None),
        ("writing k3s.service", None),
        ("writing k3s.service.env", None),
        ("starting k3s", None),
        ("API ready", "Kubernetes API ready"),
        ("node appliance Ready", "node appliance Ready"),
    ]
    assert systemd.calls[:4] == [
        ("state", "k3s.service"),
        ("daemon-reload",),
        ("enable-now", "k3s.service"),
        ("state", "k3s.service"),
    ]
    assert paths.k3s_config.read_text() == k3s_files.render_config(ctx.settings)
    assert paths.k3s_unit.read_text() == k3s_files.render_unit()
    assert paths.k3s_env.read_text() == k3s_files.render_env(ctx.intent)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (paths.k3s_config, paths.k3s_unit)}
    assert modes == {"config.yaml": 0o600, "k3s.service": 0o644}
    assert paths.k3s_env.stat().st_mode & 0o777 == 0o600
    assert paths.kubeconfig.stat().st_mode & 0o777 == 0o600  # k3s wrote it 0644
    assert ctx.k3s.asked == [paths.k3s_binary]  # type: ignore[attr-defined]
    assert k3s.probe(ctx) is True


def test_a_second_run_changes_nothing_and_touches_no_unit(tmp_path: Path) -> None:
    ctx, systemd, reports = k3s_context(tmp_path, UnitState("inactive", "dead"))
    k3s.run(ctx)
    systemd.calls.clear()
    reports.clear()
    k3s.run(ctx)
    assert [c for c in systemd.calls if c[0] != "state"] == []
    assert not any(m.startswith(("writing", "starting", "restarting")) for m, _ in reports)


def test_a_changed_config_restarts_a_running_k3s_without_a_reload(tmp_path: Path) -> None:
    ctx, systemd, reports = k3s_context(tmp_path, UnitState("inactive", "dead"))
    k3s.run(ctx)
    ctx.settings.paths.k3s_config.write_text("# edited\n")
    systemd.calls.clear()
    reports.clear()
    k3s.run(ctx)
    assert [c for c in systemd.calls if c[0] != "state"] == [("restart", "k3s.service")]
    assert ("writing config.yaml", None) in reports
    assert ("restarting k3s for the new configuration", None) in reports


def test_a_changed_unit_reloads_systemd_then_restarts(tmp_path: Path) -> None:
    ctx, systemd, _ = k3s_context(tmp_path, UnitState("inactive", "dead"))
    k3s.run(ctx)
    for path in (ctx.settings.paths.k3s_unit, ctx.settings.paths.k3s_env):
        path.write_text("# edited\n")
        systemd.calls.clear()
        k3s.run(ctx)
        assert [c for c in systemd.calls if c[0] != "state"] == [
            ("daemon-reload",),
            ("restart", "k3s.service"),
        ]


def test_a_stopped_k3s_with_its_files_in_place_is_reloaded_and_started(tmp_path: Path) -> None:
    ctx, systemd, reports = k3s_context(tmp_path, UnitState("inactive", "dead"))
    k3s.run(ctx)
    systemd.states = [UnitState("inactive", "dead")]
    systemd.calls.clear()
    reports.clear()
    k3s.run(ctx)
    assert [c for c in systemd.calls if c[0] != "state"] == [
        ("daemon-reload",),
        ("enable-now", "k3s.service"),
    ]
    assert ("starting k3s", None) in reports


def test_an_incomplete_payload_fails_naming_the_first_problem(tmp_path: Path) -> None:
    archives = (ImageArchive(file="gone.tar", sha256=SHA_IMAGES),)
    ctx, _, _ = k3s_context(tmp_path, archives=archives)
    ctx.settings.paths.k3s_binary.chmod(0o644)
    with pytest.raises(StepFailed) as caught:
        k3s.run(ctx)
    binary = ctx.settings.paths.k3s_binary
    gone = ctx.settings.paths.k3s_images / "gone.tar"
    failed = caught.value
    assert str(failed) == f"the installed k3s payload is incomplete: {binary}: not executable"
    assert failed.cause == (
        "the installation did not finish copying the payload, or a file was damaged or "
        "replaced afterwards"
    )
    assert failed.next_step == (
        "reinstall from the appliance ISO (the installer verifies every file), then retry"
    )
    assert failed.output == f"{binary}: not executable\n{gone}: missing"


def test_a_binary_that_does_not_run(tmp_path: Path) -> None:
    error = CommandError("exit status 126", argv=["k3s"], output="exec format error")
    ctx, _, _ = k3s_context(tmp_path, binary=FakeK3s(error=error))
    with pytest.raises(StepFailed) as caught:
        k3s.run(ctx)
    failed = caught.value
    binary = ctx.settings.paths.k3s_binary
    assert str(failed) == f"{binary} does not run: exit status 126"
    assert failed.cause == (
        "the k3s binary in the payload is not a working k3s for this machine (a stand-in "
        "payload, a damaged copy or the wrong architecture)"
    )
    assert failed.next_step == "build the ISO with the real pinned k3s artifacts and reinstall"
    assert failed.output == "exec format error"


def test_a_binary_of_another_version_than_the_build_pinned(tmp_path: Path) -> None:
    ctx, _, _ = k3s_context(tmp_path, binary=FakeK3s("v1.30.0+k3s1"))
    with pytest.raises(StepFailed) as caught:
        k3s.run(ctx)
    binary = ctx.settings.paths.k3s_binary
    assert str(caught.value) == f"{binary} is k3s v1.30.0+k3s1, the build pinned {VERSION}"
    assert caught.value.cause == "the binary was replaced after installation"
    assert caught.value.next_step == "reinstall from the appliance ISO, then retry"


def test_no_pinned_version_takes_what_the_binary_says(tmp_path: Path) -> None:
    ctx, _, reports = k3s_context(tmp_path, binary=FakeK3s("v1.30.0+k3s1"), version="")
    k3s.run(ctx)
    assert ("k3s v1.30.0+k3s1 installed", "k3s v1.30.0+k3s1") in reports


@pytest.mark.parametrize("verb", ["state", "daemon-reload", "enable-now"])
def test_systemd_refusing_fails_the_step(tmp_path: Path, verb: str) -> None:
    ctx, systemd, _ = k3s_context(tmp_path, UnitState("inactive", "dead"))
    systemd.fail[verb] = SystemdError("Unit k3s.service has a bad setting", argv=[], output="x")
    with pytest.raises(StepFailed) as caught:
        k3s.run(ctx)
    failed = caught.value
    assert str(failed) == "systemd could not start k3s: Unit k3s.service has a bad setting"
    assert failed.cause == "the k3s unit is invalid or systemd refused it"
    assert failed.next_step == "check `systemctl status k3s` and `journalctl -u k3s`, then retry"
    assert failed.output == "x"


def test_systemd_refusing_a_restart_fails_the_step(tmp_path: Path) -> None:
    ctx, systemd, _ = k3s_context(tmp_path, UnitState("inactive", "dead"))
    k3s.run(ctx)
    ctx.settings.paths.k3s_config.write_text("# edited\n")
    systemd.fail["restart"] = SystemdError("Job failed", argv=[], output="")
    with pytest.raises(StepFailed, match=r"^systemd could not start k3s: Job failed$"):
        k3s.run(ctx)


# -- waiting for the API and the node ------------------------------------------------------


def test_api_ready_says_what_it_waits_for(tmp_path: Path) -> None:
    kube = FakeKube()
    ctx, systemd, _ = k3s_context(tmp_path, kube=kube)
    systemd.states = [UnitState("activating", "start")]
    assert k3s._api_ready(ctx) == (None, "waiting for k3s (activating) to write its kubeconfig")
    systemd._start()
    kube.ready = "[-]poststarthook failed"
    assert k3s._api_ready(ctx) == (None, "API /readyz says [-]poststarthook failed")
    kube.ready = "[-]etcd " + "x" * 100
    assert k3s._api_ready(ctx) == (None, "API /readyz says [-]etcd " + "x" * 72)
    kube.ready = "ok"
    assert k3s._api_ready(ctx) == (True, "")
    systemd.fail["state"] = SystemdError("Failed to connect to bus", argv=[], output="")
    assert k3s._api_ready(ctx) == (None, "systemd: Failed to connect to bus")


def test_api_ready_while_kubectl_fails(tmp_path: Path) -> None:
    from host_service.kube import KubeError

    class Refusing(FakeKube):
        def readyz(self) -> str:
            raise KubeError("connection refused", argv=("kubectl",), output="")

    ctx, systemd, _ = k3s_context(tmp_path, kube=Refusing())
    systemd._start()
    assert k3s._api_ready(ctx) == (None, "waiting for the API: connection refused")


@pytest.mark.parametrize(
    ("state", "standin", "message", "cause", "next_step"),
    [
        (
            UnitState("failed", "failed"),
            False,
            "k3s.service failed to start",
            "k3s exited during start-up; the journal below says why",
            "read `journalctl -u k3s`, fix the cause (disk, network, config), then retry",
        ),
        (
            UnitState("activating", "auto-restart", restarts=4),
            True,
            "k3s.service failed to start (it exited and was restarted 4 times)",
            "this appliance was built with stand-in k3s artifacts, which cannot run a cluster",
            "build the ISO with the real pinned k3s artifacts and reinstall",
        ),
    ],
)
def test_a_crash_looping_k3s_fails_with_its_journal(
    tmp_path: Path, state: UnitState, standin: bool, message: str, cause: str, next_step: str
) -> None:
    ctx, systemd, _ = k3s_context(tmp_path, standin=standin)
    systemd.states = [state]
    with pytest.raises(StepFailed) as caught:
        k3s._api_ready(ctx)
    failed = caught.value
    assert (str(failed), failed.cause, failed.next_step) == (message, cause, next_step)
    assert failed.output == systemd.log
    assert ("journal", "k3s.service") in systemd.calls


def test_the_api_never_ready_times_out_with_the_journal(tmp_path: Path) -> None:
    kube = FakeKube(ready="[-]etcd not ready")
    ctx, systemd, _ = k3s_context(tmp_path, UnitState("inactive", "dead"), kube=kube, timeout=0)
    with pytest.raises(StepFailed) as caught:
        k3s.run(ctx)
    failed = caught.value
    assert str(failed) == (
        "the Kubernetes API did not become ready (API /readyz says [-]etcd not ready)"
    )
    assert failed.cause == (
        "k3s is running but not healthy: image import, network or resource trouble"
    )
    assert failed.next_step == (
        "read `journalctl -u k3s` and `k3s kubectl get nodes -o wide`, then retry"
    )
    assert failed.output == systemd.log


def test_node_ready_names_the_ready_node_or_what_it_waits_for(tmp_path: Path) -> None:
    kube = FakeKube()
    ctx, _, _ = k3s_context(tmp_path, kube=kube)
    assert k3s._node_ready(ctx) == (None, "waiting for the node to register")
    kube.put(node("a", "False"))
    assert k3s._node_ready(ctx) == (None, "waiting for the node to become Ready")
    kube.put(node("b"))
    assert k3s._node_ready(ctx) == ("b", "")
    kube.objects[("nodes", "", "b")]["metadata"] = {"name": "b"}
    del kube.objects[("nodes", "", "b")]["metadata"]["name"]
    assert k3s._node_ready(ctx) == ("?", "")
    kube.deny("list", "nodes", message="nodes is forbidden")
    assert k3s._node_ready(ctx) == (
        None,
        "listing nodes: Error from server (Forbidden): nodes is forbidden",
    )


def test_a_node_never_ready_times_out(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.put(node("appliance", "False"))
    ctx, _, reports = k3s_context(tmp_path, kube=kube, timeout=0)
    with pytest.raises(StepFailed) as caught:
        k3s.run(ctx)
    assert str(caught.value) == (
        "the node did not become Ready (waiting for the node to become Ready)"
    )
    assert ("API ready", "Kubernetes API ready") in reports


# -- probe -----------------------------------------------------------------------------------


def test_probe_needs_payload_files_unit_api_node_and_a_private_kubeconfig(
    tmp_path: Path,
) -> None:
    kube = FakeKube()
    kube.put(node("appliance"))
    ctx, systemd, _ = k3s_context(tmp_path, UnitState("inactive", "dead"), kube=kube)
    assert k3s.probe(ctx) is False  # nothing written yet
    k3s.run(ctx)
    assert k3s.probe(ctx) is True
    paths = ctx.settings.paths

    paths.kubeconfig.chmod(0o640)
    assert k3s.probe(ctx) is False
    paths.kubeconfig.chmod(0o600)

    paths.k3s_env.write_text("# edited\n")
    assert k3s.probe(ctx) is False
    paths.k3s_env.write_text(k3s_files.render_env(ctx.intent))
    assert k3s.probe(ctx) is True

    paths.k3s_config.write_bytes(b"\xff\xfe")
    assert k3s.probe(ctx) is False
    paths.k3s_config.write_text(k3s_files.render_config(ctx.settings))

    paths.k3s_binary.chmod(0o644)
    assert k3s.probe(ctx) is False
    paths.k3s_binary.chmod(0o755)

    systemd.states = [UnitState("activating", "start")]
    assert k3s.probe(ctx) is False
    systemd.states = [UnitState("active", "running")]

    kube.ready = "[-]etcd"
    assert k3s.probe(ctx) is False
    kube.ready = "ok"

    kube.put(node("appliance", "False"))
    assert k3s.probe(ctx) is False
    kube.put(node("appliance"))

    systemd.fail["state"] = SystemdError("no bus", argv=[], output="")
    assert k3s.probe(ctx) is False
    del systemd.fail["state"]

    paths.kubeconfig.unlink()
    assert k3s.probe(ctx) is False


def test_a_ready_node_without_metadata_is_named_with_a_question_mark(tmp_path: Path) -> None:
    kube = FakeKube()
    ctx, _, _ = k3s_context(tmp_path, kube=kube)
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    kube.objects[("nodes", "", "x")] = {"kind": "Node", "status": ready}
    assert k3s._node_ready(ctx) == ("?", "")


@pytest.mark.usefixtures("ascii_locale")
def test_files_with_a_non_ascii_proxy_user_match_whatever_the_locale(tmp_path: Path) -> None:
    ctx, systemd, _ = k3s_context(tmp_path, UnitState("inactive", "dead"))
    intent = SetupIntent(app_url="https://psa.example.com", channel="stable",
                         proxy="http://josé@proxy.example.com:3128")  # fmt: skip
    ctx = dataclasses.replace(ctx, intent=intent)
    k3s.run(ctx)
    assert "josé" in ctx.settings.paths.k3s_env.read_bytes().decode("utf-8")
    systemd.calls.clear()
    assert k3s.probe(ctx) is True
    k3s.run(ctx)
    assert [c for c in systemd.calls if c[0] not in ("state",)] == []  # nothing rewritten


@pytest.mark.usefixtures("ascii_locale")
def test_the_payload_manifest_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    ctx, _, _ = k3s_context(tmp_path)
    manifest = ctx.settings.paths.payload_manifest
    data = json.loads(manifest.read_text())
    data["built_by"] = "José"
    manifest.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    binary = ctx.settings.paths.k3s_binary
    binary.write_bytes(b"#!/bin/sh\necho replaced\n")
    assert k3s.installed_problems(ctx) == [f"{binary}: sha256 differs from the payload manifest"]
