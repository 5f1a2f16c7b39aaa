"""The setup flow from the runner over HTTP, the bootstrap it starts, and a reboot of the VM.

With stand-in k3s/Flux artifacts the bootstrap must pass preflight (against the registry the
tests serve) and stop at the k3s step with a blocker naming it and its cause, and show the
same blocker after a reboot. With real artifacts (``make test-real``) it continues to the
end; those checks skip on stand-ins.
"""

from __future__ import annotations

from typing import Any

import pytest
import testinfra.host

from tests.system.bootstrap_flow import BootstrapRun
from tests.system.setup_client import step_states
from tests.system.target import BootedTarget

STANDIN_ONLY = "the ISO carries real k3s/Flux artifacts: the bootstrap runs to the end"
REAL_ONLY = (
    "the ISO carries STAND-IN k3s/Flux artifacts: k3s cannot run here; these checks run "
    "with real artifacts (make test-real)"
)
BLOCKER_KEYS = ("step", "message", "cause", "next_step")


@pytest.fixture
def standin(appliance_target: BootedTarget) -> None:
    if not appliance_target.standin_artifacts:
        pytest.skip(STANDIN_ONLY)


@pytest.fixture
def real(appliance_target: BootedTarget) -> None:
    if appliance_target.standin_artifacts:
        pytest.skip(REAL_ONLY)


def _step(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status["steps"] if s["name"] == name)


def test_setup_accepted_and_bootstrap_started(
    bootstrap_run: BootstrapRun, appliance_target: BootedTarget
) -> None:
    submitted = bootstrap_run.submitted
    assert submitted["setup"]["app_url"] == appliance_target.app_url
    assert submitted["phase"] in ("running", "blocked", "reconciled")
    # The runner watched the steps move: preflight was seen running or done before the end.
    states = [step_states(s).get("preflight") for s in bootstrap_run.seen]
    assert "done" in states


def test_preflight_passes_against_the_served_registry(
    bootstrap_run: BootstrapRun, appliance_target: BootedTarget
) -> None:
    preflight = _step(bootstrap_run.settled, "preflight")
    assert preflight["status"] == "done", preflight
    details = "\n".join(preflight["details"])
    assert f"https://{appliance_target.registry_host}/v2/" in details
    assert "FAIL" not in details
    assert "failed:" not in details


def test_standin_stops_at_k3s_with_a_blocker(bootstrap_run: BootstrapRun, standin: None) -> None:
    status = bootstrap_run.settled
    assert status["phase"] == "blocked"
    assert status["running"] is False
    blocker = status["blocker"]
    assert blocker["step"] == "k3s"
    assert blocker["message"]
    assert "stand-in" in (blocker["message"] + blocker["cause"]).lower()
    assert blocker["next_step"]
    states = step_states(status)
    assert states["preflight"] == "done"
    assert states["k3s"] == "blocked"
    assert all(states[s] == "pending" for s in ("storage", "flux", "release", "reconcile"))


def test_same_blocker_after_reboot(bootstrap_run: BootstrapRun, standin: None) -> None:
    before, after = bootstrap_run.settled, bootstrap_run.after_reboot
    assert bootstrap_run.reboot.system_state == "running"
    assert after["phase"] == "blocked"
    assert after["running"] is False
    assert {k: after["blocker"][k] for k in BLOCKER_KEYS} == {
        k: before["blocker"][k] for k in BLOCKER_KEYS
    }
    # Nothing was retried by itself across the reboot.
    assert _step(after, "k3s")["attempts"] == _step(before, "k3s")["attempts"]
    assert step_states(after) == step_states(before)


def test_service_and_console_after_reboot(
    bootstrap_run: BootstrapRun, setup_token: str, host: testinfra.host.Host
) -> None:
    assert bootstrap_run.healthz_after_reboot == 200
    assert setup_token in bootstrap_run.issue_after_reboot
    assert host.service("appliance-setup.service").is_running


def test_units_after_the_bootstrap(host: testinfra.host.Host, bootstrap_run: BootstrapRun) -> None:
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == "", f"failed units after the bootstrap and a reboot:\n{failed}"


# -- real artifacts only -----------------------------------------------------------------


def test_bootstrap_reconciled(bootstrap_run: BootstrapRun, real: None) -> None:
    status = bootstrap_run.settled
    assert status["phase"] == "reconciled", status.get("blocker")
    assert all(s["status"] == "done" for s in status["steps"])
    assert bootstrap_run.after_reboot["phase"] == "reconciled"


def test_k3s_ready(host: testinfra.host.Host, bootstrap_run: BootstrapRun, real: None) -> None:
    assert host.service("k3s.service").is_running
    assert host.check_output("k3s kubectl get --raw=/readyz") == "ok"
    ready = '{.items[*].status.conditions[?(@.type=="Ready")].status}'
    nodes = host.check_output(f"k3s kubectl get nodes -o jsonpath='{ready}'")
    assert nodes.split() == ["True"]


def test_kubeconfig_is_root_only(
    host: testinfra.host.Host, bootstrap_run: BootstrapRun, real: None
) -> None:
    kubeconfig = host.file("/etc/rancher/k3s/k3s.yaml")
    assert (f"{kubeconfig.mode:04o}", kubeconfig.user) == ("0600", "root")


def test_storage_verified(
    host: testinfra.host.Host, bootstrap_run: BootstrapRun, real: None
) -> None:
    classes = host.check_output(
        "k3s kubectl get storageclass -o jsonpath='{range .items[*]}{.metadata.name}="
        '{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}{"\\n"}{end}\''
    )
    assert classes.splitlines() == ["local-path=true"]
    assert _step(bootstrap_run.settled, "storage")["status"] == "done"


def test_flux_installed(
    host: testinfra.host.Host,
    appliance_target: BootedTarget,
    bootstrap_run: BootstrapRun,
    real: None,
) -> None:
    namespace = appliance_target.config.appliance.namespaces.flux
    for controller in ("source", "kustomize", "helm", "notification"):
        host.run_expect(
            [0],
            f"k3s kubectl -n {namespace} rollout status deployment/{controller}-controller "
            "--timeout=60s",
        )


def test_release_applied(
    host: testinfra.host.Host,
    appliance_target: BootedTarget,
    bootstrap_run: BootstrapRun,
    real: None,
) -> None:
    release = bootstrap_run.settled["release"]
    assert release is not None
    assert release["manifest_digest"].startswith("sha256:")
    namespace = appliance_target.config.appliance.namespaces.flux
    revision = host.check_output(
        f"k3s kubectl -n {namespace} get kustomizations.kustomize.toolkit.fluxcd.io "
        "-o jsonpath='{.items[*].status.lastAppliedRevision}'"
    )
    assert revision
