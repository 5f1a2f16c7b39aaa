"""The support bundle on a bootstrapped appliance (real registry, real kubectl against the API
stand-in): from the command line and over HTTP, canaries planted in every secret place and
found nowhere in the bundle, k3s down, the API hung, the size bound."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from host_service import host
from host_service.support.bundle import default_name
from host_service.values import SECRET_NAME
from tests.fixtures.host_service import PROJECT, InProcessService, setup_body
from tests.fixtures.kube_api import KubeApi
from tests.fixtures.support import Canaries, manifest, members, plant_host_canaries, search
from tests.fixtures.tmpfs import small_tmpfs

pytestmark = pytest.mark.usefixtures("published_release")


def bootstrapped(start_service: Any, canaries: Canaries) -> InProcessService:
    running: InProcessService = start_service()
    client = running.logged_in()
    password = str(canaries.add("proxy-password"))
    body = setup_body(proxy=f"http://ops:{password}@proxy.invalid:3128", no_proxy="127.0.0.1")
    assert client.post("/api/setup", body).status_code == 202
    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
    return running


def plant_cluster_canaries(kube_api: KubeApi, canaries: Canaries) -> None:
    """An application Secret, a crash-looping pod whose logs repeat every secret, a
    HelmRelease with inline values; the generated Secret's values join the canaries."""
    cluster = kube_api.cluster
    generated = cluster.find("secrets", "msp", SECRET_NAME)
    assert generated is not None
    for key, value in generated["data"].items():
        canaries.add(f"generated/{key}", base64.b64decode(value).decode())
    license_key = str(canaries.add("license-key"))
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "alga-license", "namespace": "msp"},
            "data": {"key": base64.b64encode(license_key.encode()).decode()},
        }
    )
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "alga-core-7f9", "namespace": "msp"},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "ghcr.io/nine-minds/alga-psa:1.4.0",
                        "env": [{"name": "LICENSE_KEY", "value": license_key}],
                    }
                ]
            },
            "status": {
                "phase": "Running",
                "pinned": True,
                "containerStatuses": [{"name": "app", "restartCount": 2}],
            },
        }
    )
    secret_lines = [f"loaded {name}: {value}" for name, value in canaries.values.items()
                    if isinstance(value, str)]  # fmt: skip
    cluster.add_log("msp", "alga-core-7f9", "starting", *secret_lines, "listening on :3000")
    cluster.previous_logs[("msp", "alga-core-7f9")] = ["crashed", *secret_lines]
    cluster.put(
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "extra", "namespace": "alga-system"},
            "spec": {"values": {"apiKey": str(canaries.add("helm-values"))}},
        }
    )


def cli(running: InProcessService, *args: str) -> subprocess.CompletedProcess[str]:
    appliance = running.appliance
    argv = [sys.executable, "-m", "host_service", *args, "--root", str(appliance.root)]
    return subprocess.run(
        [*argv, "--settings", str(appliance.settings_file)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        check=False,
    )


def test_cli_bundle_has_every_part_and_no_secret(
    start_service: Any, kube_api: KubeApi, tmp_path: Path
) -> None:
    canaries = Canaries()
    running = bootstrapped(start_service, canaries)
    settings = running.appliance.settings()
    canaries.values.update(plant_host_canaries(settings, kubeconfig_token=kube_api.token).values)
    plant_cluster_canaries(kube_api, canaries)
    output = tmp_path / "bundle.tar.gz"

    done = cli(running, "support-bundle", "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert f"wrote {output}" in done.stdout
    assert output.stat().st_mode & 0o777 == 0o600

    hits = search(output, canaries)
    assert hits == [], hits
    files = members(output)
    for expected in (
        "host/kernel.txt",
        "host/network.txt",
        "appliance/build-info.json",
        "appliance/state/bootstrap-state.json",
        "appliance/state/release-selection.json",
        "appliance/state/values/alga-core.yaml",
        "k3s/config.yaml",
        "cluster/nodes.json",
        "cluster/events.json",
        "flux/ocirepositories.json",
        "flux/kustomizations.json",
        "helm/helmreleases.json",
        "workloads/pods.json",
        "storage/storageclasses.json",
        "storage/persistentvolumeclaims.json",
        "appliance/configmaps.json",
        "logs/msp/alga-core-7f9/app.log",
        "logs/msp/alga-core-7f9/app.previous.log",
    ):
        assert expected in files, expected
    assert b"listening on :3000" in files["logs/msp/alga-core-7f9/app.log"]
    # The kernel's own clock state, as this machine's kernel answers it (5: TIME_ERROR).
    state = host.kernel_clock_state()
    assert state is not None  # Linux with glibc: adjtimex is always there
    words = "not synchronized" if state == 5 else "synchronized"
    time_lines = files["host/time.txt"].decode().splitlines()
    assert f"kernel (adjtimex state {state}): {words}" in time_lines
    assert b"crashed" in files["logs/msp/alga-core-7f9/app.previous.log"]
    kustomizations = json.loads(files["flux/kustomizations.json"])["items"]
    assert kustomizations[0]["status"]["lastAppliedRevision"].startswith("sha256:")
    document = manifest(output)
    assert document["cluster"] == {**document["cluster"], "reachable": True}
    by_path = {f["path"]: f for f in document["files"]}
    assert by_path["cluster/nodes.json"]["how"] == "kubectl get nodes -A"
    # The stand-in serves no StatefulSets: a failure, named, with kubectl's error.
    assert by_path["workloads/statefulsets.json"]["status"] == "failed"
    assert "statefulsets" in by_path["workloads/statefulsets.json"]["error"]

    alias = tmp_path / "alias.tar.gz"
    again = cli(running, "collect-support-bundle", "--output", str(alias))
    assert again.returncode == 0, again.stderr
    assert search(alias, canaries) == []


def test_bundle_over_http_needs_a_session_and_downloads_the_file(
    start_service: Any, kube_api: KubeApi
) -> None:
    canaries = Canaries()
    running = bootstrapped(start_service, canaries)
    plant_cluster_canaries(kube_api, canaries)
    canaries.add("setup-token", running.appliance.token())
    canaries.add("kubeconfig-token", kube_api.token)
    anonymous = running.client()
    assert anonymous.post("/api/support-bundle").status_code == 401
    assert anonymous.get("/support-bundle?name=x", allow_redirects=False).status_code == 303

    client = running.logged_in()
    assert client.http.post(f"{running.url}/api/support-bundle").status_code == 403  # no CSRF
    created = client.post("/api/support-bundle")
    assert created.status_code == 201, created.text
    info = created.json()
    download = client.get(info["download"])
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/gzip"
    assert "attachment" in download.headers["Content-Disposition"]
    kept = running.appliance.state_dir / "support" / info["name"]
    assert download.content == kept.read_bytes()
    assert kept.stat().st_mode & 0o777 == 0o600
    assert search(kept, canaries) == []
    listed = client.get("/api/support-bundles").json()["bundles"]
    assert [b["name"] for b in listed] == [info["name"]]
    assert client.get("/support-bundle?name=../setup-token").status_code == 404

    # The page's button: a form post answered with the file itself.
    form = client.http.post(
        f"{running.url}/support-bundle",
        data={"csrf": client.csrf},
        timeout=120,
    )
    assert form.status_code == 200
    assert form.content[:2] == b"\x1f\x8b"
    status_page = client.get("/status").text
    assert 'action="/support-bundle"' in status_page


def test_k3s_down_the_bundle_says_so_and_has_the_rest(
    start_service: Any, kube_api: KubeApi, tmp_path: Path
) -> None:
    running = bootstrapped(start_service, Canaries())
    kube_api.server.stopping.set()
    kube_api.server.shutdown()
    kube_api.server.server_close()
    output = tmp_path / "down.tar.gz"
    done = cli(running, "support-bundle", "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert "cluster: incomplete" in done.stdout
    document = manifest(output)
    assert document["cluster"]["reachable"] is False
    assert "refused" in document["cluster"]["error"]
    files = members(output)
    assert "appliance/state/bootstrap-state.json" in files
    assert "host/memory.txt" in files
    by_path = {f["path"]: f for f in document["files"]}
    assert by_path["helm/helmreleases.json"]["status"] == "skipped"
    assert "not reachable" in by_path["helm/helmreleases.json"]["note"]


def test_api_hung_the_bundle_comes_within_its_time_bound(
    start_service: Any, kube_api: KubeApi, tmp_path: Path
) -> None:
    running = bootstrapped(start_service, Canaries())
    kube_api.cluster.hang.set()
    output = tmp_path / "hung.tar.gz"
    done = cli(running, "support-bundle", "--output", str(output), "--cluster-seconds", "3")
    assert done.returncode == 0, done.stderr
    document = manifest(output)
    assert document["cluster"]["complete"] is False
    assert "did not answer within 3 s" in document["cluster"]["error"]
    assert "appliance/state/release-selection.json" in members(output)


def test_size_bound_from_the_command_line(
    start_service: Any, kube_api: KubeApi, tmp_path: Path
) -> None:
    running = bootstrapped(start_service, Canaries())
    cluster = kube_api.cluster
    for i in range(4):
        name = f"noisy-{i}"
        cluster.put(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": "msp"},
                "spec": {"containers": [{"name": "app", "image": "x"}]},
                "status": {"phase": "Running", "pinned": True},
            }
        )
        cluster.add_log("msp", name, *(os.urandom(200).hex() for _ in range(1000)))
    output = tmp_path / "small.tar.gz"
    done = cli(running, "support-bundle", "--output", str(output), "--max-size-mb", "1")
    assert done.returncode == 0, done.stderr
    assert output.stat().st_size <= 1024 * 1024
    assert "cut: logs/msp/noisy-" in done.stdout
    assert any(c.startswith("logs/msp/noisy-") for c in manifest(output)["cut"])


def _bundle_into(root: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """`support-bundle --output OUTPUT` on a bare root: no cluster, a developer's defaults."""
    argv = [sys.executable, "-m", "host_service", "support-bundle", "--root", str(root),
            "--output", str(output), "--journal-socket", str(root / "no-journal")]  # fmt: skip
    return subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(PROJECT)}, check=False)  # fmt: skip


def test_an_output_below_a_file_is_refused_before_collecting(tmp_path: Path) -> None:
    # It collected for up to 90 s, then said "<file>: File exists" with a hint about the
    # state directory's disk.
    notes = tmp_path / "notes"
    notes.write_text("a file")
    output = notes / "bundle.tar.gz"
    done = _bundle_into(tmp_path / "root", output)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-2:] == [
        f"error: {output}: {notes} is not a directory, so the bundle cannot be written there",
        "hint: name another place with --output (a file, or a directory for the default name)",
    ]
    assert "collecting" not in done.stdout
    assert notes.read_text() == "a file"


def test_an_output_that_cannot_be_looked_at_or_made_is_one_line(tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 300)  # longer than any filesystem's names
    done = _bundle_into(tmp_path / "root", too_long)
    assert done.returncode == 4, done.stderr
    assert f"error: {too_long}: cannot be looked at (File name too long)" in (
        done.stderr.splitlines()
    )
    in_proc = Path("/proc/self/no-such-directory/bundle.tar.gz")  # procfs makes none
    done = _bundle_into(tmp_path / "root", in_proc)
    assert done.returncode == 4, done.stderr
    assert (
        f"error: {in_proc.parent}: cannot make the bundle's directory (No such file or directory)"
        in done.stderr.splitlines()
    )


def test_a_bundle_that_finds_no_room_names_its_file_not_the_state_disk(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", 4096) as small:  # one page: less than any bundle
        output = small / "bundle.tar.gz"
        done = _bundle_into(tmp_path / "root", output)
        assert done.returncode == 4, done.stderr
        assert done.stderr.splitlines()[-2:] == [
            f"error: {output}: writing the bundle failed: No space left on device",
            "hint: free space there, or name another place with --output (a file, or a "
            "directory for the default name)",
        ]
        assert list(small.iterdir()) == []  # no part of it, no temp file


def test_an_output_directory_is_named_there_even_when_the_state_disk_is_read_only(
    tmp_path: Path,
) -> None:
    # It made and chmodded <state>/support just to pick a name (so a read-only state disk
    # stopped it), and looked for a clash only there, so it overwrote a bundle in DIR.
    root = tmp_path / "root"
    out = tmp_path / "out"
    out.mkdir()
    now = int(time.time())
    earlier = {default_name(now + s): f"bundle of {s}".encode() for s in range(-5, 120)}
    for name, data in earlier.items():
        (out / name).write_bytes(data)
    state = root / "var/lib/alga-appliance"
    state.parent.mkdir(parents=True)
    with small_tmpfs(state, 64 * 1024) as mounted:
        subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)
        done = _bundle_into(root, out)
        assert done.returncode == 0, done.stderr
        assert list(mounted.iterdir()) == []
    made = sorted({p.name for p in out.iterdir()} - set(earlier))
    assert len(made) == 1, made
    assert made[0].endswith("-2.tar.gz")
    assert f"wrote {out / made[0]} " in done.stdout
    assert {name: (out / name).read_bytes() for name in earlier} == earlier
    assert manifest(out / made[0])["schema"] == "alga.appliance.support-bundle/v1"
