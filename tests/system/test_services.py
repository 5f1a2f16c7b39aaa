"""The appliance's units: enabled, active, nothing failed, the setup service on its port."""

from __future__ import annotations

import testinfra.host

from tests.system.setup_client import SetupClient
from tests.system.target import BootedTarget

APPLIANCE_UNITS = ("appliance-setup.service", "appliance-console-banner.timer")


def test_appliance_units_enabled_and_active(host: testinfra.host.Host) -> None:
    for name in APPLIANCE_UNITS:
        unit = host.service(name)
        assert unit.is_enabled, f"{name} is not enabled"
        assert unit.is_running, f"{name} is not active"


def test_console_banner_ran(host: testinfra.host.Host) -> None:
    # A oneshot: it has run when its last result is success and it is not failed.
    result = host.run("systemctl show -p Result -p ExecMainStatus appliance-console-banner.service")
    assert "Result=success" in result.stdout
    assert "ExecMainStatus=0" in result.stdout


def test_setup_service_is_stopped_by_itself(host: testinfra.host.Host) -> None:
    # mixed: SIGTERM to the service alone, which ends its step's program and leaves the step
    # to resume; the rest of the unit gets SIGKILL only after the stop timeout.
    result = host.run("systemctl show -p KillMode -p TimeoutStopUSec appliance-setup.service")
    assert "KillMode=mixed" in result.stdout
    assert "TimeoutStopUSec=20s" in result.stdout


def test_nothing_failed(host: testinfra.host.Host) -> None:
    failed = host.run("systemctl --failed --no-legend --plain")
    assert failed.stdout.strip() == "", f"failed units:\n{failed.stdout}"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running"


def test_setup_service_listens(host: testinfra.host.Host, appliance_target: BootedTarget) -> None:
    port = appliance_target.config.appliance.host_service.port
    assert (
        host.socket(f"tcp://0.0.0.0:{port}").is_listening
        or host.socket(f"tcp://:::{port}").is_listening
    )


def test_healthz_through_port_forward(appliance_target: BootedTarget) -> None:
    client = SetupClient(appliance_target.machine.base_url)
    assert client.wait_healthy(timeout=60) == 200
    assert client.healthz().json() == {"ok": True}


def test_api_refuses_without_session(appliance_target: BootedTarget) -> None:
    client = SetupClient(appliance_target.machine.base_url)
    answer = client.session.get(client.base_url + "/api/status", timeout=30)
    assert answer.status_code == 401
