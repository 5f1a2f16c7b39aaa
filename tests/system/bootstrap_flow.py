"""The technician's first setup, end to end: token login, setup, bootstrap, a reboot, a look."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.system.machine import BootRecord, Machine
from tests.system.setup_client import SetupClient, settled


@dataclass
class BootstrapRun:
    """What the setup flow showed, before and after a reboot of the VM."""

    submitted: dict[str, Any]
    settled: dict[str, Any]
    seen: list[dict[str, Any]]
    after_reboot: dict[str, Any]
    reboot: BootRecord
    healthz_after_reboot: int
    issue_after_reboot: str = ""


def run_bootstrap(
    machine: Machine,
    *,
    token: str,
    app_url: str,
    timeout: float,
    after_reboot: Callable[[], None],
) -> BootstrapRun:
    client = SetupClient(machine.base_url)
    client.login(token)
    submitted = client.submit_setup({"app_url": app_url})
    status = client.watch(settled, timeout=timeout)
    record = machine.reboot("after-setup")
    after_reboot()
    # A new boot: the service resumes from its persisted state; nothing is retried by itself.
    again = SetupClient(machine.base_url)
    healthz = again.wait_healthy(timeout=120)
    again.login(token)
    after_status = again.watch(settled, timeout=timeout)
    return BootstrapRun(
        submitted=submitted,
        settled=status,
        seen=client.seen,
        after_reboot=after_status,
        reboot=record,
        healthz_after_reboot=healthz,
    )
