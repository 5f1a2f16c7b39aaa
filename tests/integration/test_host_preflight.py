"""The preflight step on its own, against real sockets: the real registry client through a
real loopback CONNECT proxy that wants a login (407), to the real registry."""

from __future__ import annotations

from typing import Any

from host_service.host import LinuxHost
from host_service.intent import SetupIntent
from host_service.registry_access import registry_access
from host_service.steps import preflight
from host_service.steps.context import StepContext, StepFailed
from tests.fixtures.host_service import Appliance, ConnectProxy, FakeKube


class NoSystemd:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(name)


def run_preflight(appliance: Appliance, proxy: str) -> tuple[list[str], StepFailed | None]:
    """Preflight with the real host, the real registry client and the operator's ``proxy``;
    the progress lines it reported and how it failed (None: it passed)."""
    settings = appliance.settings()
    intent = SetupIntent(app_url="https://psa.example.com", channel="stable", proxy=proxy)
    reports: list[str] = []
    ctx = StepContext(
        settings=settings,
        intent=intent,
        kube=FakeKube(),
        systemd=NoSystemd(),
        k3s=NoSystemd(),
        host=LinuxHost(),
        registry=registry_access(settings, intent),
        reporter=lambda message, detail: reports.append(message),
    )
    try:
        preflight.run(ctx)
    except StepFailed as failed:
        return reports, failed
    return reports, None


def test_a_proxy_that_wants_a_login_says_so(
    appliance: Appliance, connect_proxy: ConnectProxy
) -> None:
    """No user name and password in the proxy URL: the proxy's 407 is named as such and the
    advice is to add them on the setup page (not to "set a proxy": one is set)."""
    _, failed = run_preflight(appliance, connect_proxy.url())
    assert failed is not None
    proxy = f"127.0.0.1:{connect_proxy.port}"
    assert failed.message.startswith(f"the proxy {proxy} requires authentication (HTTP 407)")
    assert "no user name and password are set" in failed.cause
    assert failed.next_step == (
        "set user:password in the proxy URL on the setup page "
        f"(http://user:password@{proxy}), save, then retry"
    )
    assert "set a proxy" not in failed.next_step
    # The key text is whole, on its own short line (a long line hid it in the output box).
    line = f"FAIL  HTTPS: the proxy {proxy} answered 407 Proxy Authentication Required"
    assert line in failed.output.splitlines()
    assert connect_proxy.refused
    assert not connect_proxy.tunnels


def test_a_proxy_that_refuses_the_login_says_so(
    appliance: Appliance, connect_proxy: ConnectProxy
) -> None:
    _, failed = run_preflight(appliance, connect_proxy.url("ops", "not-the-password"))
    assert failed is not None
    proxy = f"127.0.0.1:{connect_proxy.port}"
    assert failed.message.startswith(
        f"the proxy {proxy} refused the user name and password (HTTP 407)"
    )
    assert failed.next_step.startswith("correct user:password in the proxy URL")
    assert "not-the-password" not in f"{failed.message}{failed.output}"


def test_the_right_login_reaches_the_registry_through_the_proxy(
    appliance: Appliance, connect_proxy: ConnectProxy, registry: Any
) -> None:
    reports, failed = run_preflight(appliance, connect_proxy.url("ops", "pw-proxy-7"))
    # Only the machine's own facts (route, disk, memory) may fail here.
    assert failed is None or "HTTPS" not in failed.message, failed.output
    proxy = f"127.0.0.1:{connect_proxy.port}"
    assert f"HTTPS: https://{registry.host}/v2/ answers 401 via the proxy {proxy}" in reports
    assert connect_proxy.tunnels == [registry.host]
