"""Preflight's exact words: every check's line, the blocker for each failure (direct and
through a proxy), and the summary when several checks fail at once."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from host_service.intent import SetupIntent
from host_service.oci import (
    Ping,
    ProxyAuthenticationRequired,
    ProxyFailed,
    RegistryError,
    RegistryTimeout,
    RegistryTLSError,
)
from host_service.registry_access import trust_site_ca
from host_service.steps import preflight
from host_service.steps.context import StepContext, StepFailed
from tests.fixtures.host_service import FakeHost
from tests.unit.test_host_steps import context

GIB = 1024**3
CLOCK = FakeHost().clock
PROXY = "http://proxy.example.com:3128"
DNS_NEXT = "check the DNS servers (resolvectl status) or the proxy address in setup, then retry"


class Client:
    """A registry client whose ping answers ``ping`` or raises ``error``."""

    def __init__(self, ping: Ping | None = None, error: Exception | None = None) -> None:
        self.answer = ping or Ping(401, CLOCK)
        self.error = error

    def ping(self) -> Ping:
        if self.error is not None:
            raise self.error
        return self.answer

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def preflight_context(
    tmp_path: Path,
    *,
    host: FakeHost | None = None,
    client: Client | None = None,
    proxy: str | None = None,
) -> tuple[StepContext, list[tuple[str, str | None]]]:
    host = host or FakeHost(dns={"ghcr.io": ["140.82.121.33"], "proxy.example.com": ["10.0.0.3"]})
    intent = SetupIntent(app_url="https://psa.example.com", channel="stable", proxy=proxy)
    ctx, reports = context(tmp_path, host=host, intent=intent)
    answer = client or Client()
    return dataclasses.replace(ctx, registry=lambda: answer), reports


def blocker(tmp_path: Path, **kwargs: Any) -> StepFailed:
    ctx, _ = preflight_context(tmp_path, **kwargs)
    with pytest.raises(StepFailed) as caught:
        preflight.run(ctx)
    return caught.value


def test_every_check_passes_with_its_line(tmp_path: Path) -> None:
    ctx, reports = preflight_context(tmp_path)
    assert preflight.probe(ctx) is False  # the checks always run
    preflight.run(ctx)
    state, images = ctx.settings.paths.state, ctx.settings.paths.k3s_images
    lines = [
        "DNS: registry ghcr.io resolves to 140.82.121.33",
        "HTTPS: https://ghcr.io/v2/ answers 401",
        "network: default route via eth0",
        f"disk: 100.0 GiB free for {state}",
        f"disk: 100.0 GiB free for {images}",
        "memory: 16.0 GiB",
        "clock: within 0 s of the registry",
    ]
    assert reports == [(line, f"ok: {line}") for line in lines]


def test_dns_names_at_most_four_addresses(tmp_path: Path) -> None:
    host = FakeHost(dns={"ghcr.io": [f"192.0.2.{n}" for n in range(6)]})
    ctx, reports = preflight_context(tmp_path, host=host)
    preflight.run(ctx)
    assert (
        reports[0][0]
        == "DNS: registry ghcr.io resolves to 192.0.2.0, 192.0.2.1, 192.0.2.2, 192.0.2.3"
    )


def test_several_failures_give_the_first_as_blocker_and_all_in_the_output(tmp_path: Path) -> None:
    host = FakeHost(route=None, free=3 * GIB, memory=2 * GIB)
    failed = blocker(tmp_path, host=host, client=Client(Ping(200, CLOCK - 400)))
    state = tmp_path / "var/lib/alga-appliance"
    assert str(failed) == ("the host has no default route (and 3 more problem(s), see output)")
    assert failed.cause == "k3s needs a default route to pick the node address"
    assert failed.next_step == (
        "configure a gateway (netplan), or on an isolated network add a black-hole default "
        "route (ip route add blackhole default), then retry"
    )
    assert failed.output.splitlines() == [
        "ok    DNS: registry ghcr.io resolves to 140.82.121.33",
        "ok    HTTPS: https://ghcr.io/v2/ answers 200",
        "FAIL  network: no default route",
        f"FAIL  disk: only 3.0 GiB free for {state}",
        "FAIL  memory: 2.0 GiB",
        "FAIL  clock: +400 s off the registry's clock",
    ]


def test_one_failure_has_no_summary(tmp_path: Path) -> None:
    failed = blocker(tmp_path, host=FakeHost(memory=int(3.5 * GIB)))
    assert str(failed) == "not enough memory: 3.5 GiB, need 4.0 GiB"
    assert failed.cause == "the machine or VM has too little RAM for k3s and the application"
    assert failed.next_step == "give the machine more memory, then retry"


def test_disk_is_checked_for_the_state_and_the_images(tmp_path: Path) -> None:
    class Disks(FakeHost):
        def free_bytes(self, path: Path) -> int:
            return 30 * GIB if path.name == "alga-appliance" else 19 * GIB

    failed = blocker(tmp_path, host=Disks())
    images = tmp_path / "var/lib/rancher/k3s/agent/images"
    assert str(failed) == f"not enough free disk space for {images}: 19.0 GiB, need 20.0 GiB"
    assert failed.cause == "the disk is too small or filled by something else"
    assert failed.next_step == "free space or grow the volume (lvextend + resize2fs), then retry"
    assert f"FAIL  disk: only 19.0 GiB free for {images}" in failed.output


def test_exactly_the_thresholds_pass(tmp_path: Path) -> None:
    host = FakeHost(free=20 * GIB, memory=4 * GIB)
    ctx, reports = preflight_context(tmp_path, host=host, client=Client(Ping(401, CLOCK + 300)))
    preflight.run(ctx)
    assert reports[-1][0] == "clock: within 300 s of the registry"


@pytest.mark.parametrize(
    ("date", "words"), [(CLOCK + 301, "301 s behind"), (CLOCK - 400, "400 s ahead of")]
)
def test_a_wrong_clock(tmp_path: Path, date: float, words: str) -> None:
    failed = blocker(tmp_path, client=Client(Ping(401, date)))
    assert str(failed) == f"the clock is {words} the registry"
    assert failed.cause == (
        "no time synchronisation; TLS certificates and registry tokens fail with a wrong clock"
    )
    assert failed.next_step == "enable NTP (timedatectl set-ntp true) or set the time, then retry"


def test_no_date_header_skips_the_clock(tmp_path: Path) -> None:
    ctx, reports = preflight_context(tmp_path, client=Client(Ping(401, None)))
    preflight.run(ctx)
    assert not any(m.startswith("clock") for m, _ in reports)


def test_an_unresolvable_registry_skips_the_https_check(tmp_path: Path) -> None:
    failed = blocker(tmp_path, host=FakeHost(dns={}))
    assert str(failed) == "DNS lookup of the registry host ghcr.io failed"
    assert failed.cause == "no DNS server configured, or it cannot resolve public names"
    assert failed.next_step == DNS_NEXT
    assert failed.output.splitlines()[0] == (
        "FAIL  DNS: registry ghcr.io does not resolve "
        "(DNS lookup of ghcr.io failed: Name or service not known)"
    )
    assert "HTTPS" not in failed.output


def test_with_a_proxy_the_proxy_name_must_resolve(tmp_path: Path) -> None:
    failed = blocker(tmp_path, host=FakeHost(dns={"ghcr.io": ["1.2.3.4"]}), proxy=PROXY)
    assert str(failed) == "DNS lookup of the proxy host proxy.example.com failed"
    assert failed.cause == "the proxy host name is wrong or DNS cannot resolve it"
    assert failed.next_step == DNS_NEXT
    assert failed.output.startswith("FAIL  DNS: proxy proxy.example.com does not resolve")


def test_through_a_proxy_the_lines_say_so(tmp_path: Path) -> None:
    ctx, reports = preflight_context(tmp_path, proxy="http://user:pw@proxy.example.com")
    preflight.run(ctx)
    assert [m for m, _ in reports[:2]] == [
        "DNS: proxy proxy.example.com resolves to 10.0.0.3",
        "HTTPS: https://ghcr.io/v2/ answers 401 via the proxy proxy.example.com",
    ]


def test_a_registry_answering_something_else(tmp_path: Path) -> None:
    failed = blocker(tmp_path, client=Client(Ping(503, CLOCK)))
    assert str(failed) == "the registry answered HTTP 503 instead of 200 or 401"
    assert failed.cause == (
        "something between the appliance and the registry (a captive portal or a filtering "
        "proxy) answers in its place"
    )
    assert failed.next_step == (
        "open https://ghcr.io/v2/ from another machine on the same network and compare; "
        "allow the registry through the firewall or proxy, then retry"
    )
    assert "FAIL  HTTPS: https://ghcr.io/v2/ answered 503" in failed.output
    assert "clock" not in failed.output


def error(cls: type[RegistryError]) -> RegistryError:
    return cls("no answer", registry="ghcr.io")


DIRECT = (
    "allow outbound HTTPS (443) to the registry, or set a proxy on the setup page if this "
    "site needs one, then retry"
)
PROXIED = (
    "check that the proxy proxy.example.com:3128 lets the appliance reach ghcr.io (CONNECT "
    "to port 443), then retry"
)


@pytest.mark.parametrize(
    ("cls", "proxy", "cause", "next_step"),
    [
        (RegistryTimeout, None, "outbound HTTPS is blocked or dropped by a firewall", DIRECT),
        (RegistryTimeout, PROXY,
         "outbound HTTPS is blocked or dropped by a firewall or the proxy", PROXIED),
        (RegistryError, None,
         "outbound HTTPS to the registry is blocked, or the registry is down", DIRECT),
        (RegistryError, PROXY,
         "outbound HTTPS to the registry is blocked, or the registry is down", PROXIED),
        (ProxyFailed, PROXY,
         "the proxy proxy.example.com:3128 could not be reached, or refused to open a "
         "connection to the registry",
         "check the proxy address on the setup page and that the proxy allows HTTPS "
         "(CONNECT to port 443) to ghcr.io, then retry"),
    ],
)  # fmt: skip
def test_an_unreachable_registry_says_why_for_each_error(
    tmp_path: Path, cls: type[RegistryError], proxy: str | None, cause: str, next_step: str
) -> None:
    failed = blocker(tmp_path, client=Client(error=error(cls)), proxy=proxy)
    assert str(failed) == "cannot reach the registry ghcr.io over HTTPS"
    assert (failed.cause, failed.next_step) == (cause, next_step)
    assert "FAIL  HTTPS: no answer" in failed.output


def test_a_tls_failure_says_how_to_trust_the_site_ca(tmp_path: Path) -> None:
    ctx, _ = preflight_context(tmp_path)
    failed = blocker(tmp_path, client=Client(error=error(RegistryTLSError)))
    assert failed.cause == (
        "TLS verification failed: a TLS-inspecting proxy or firewall, or a private registry, "
        "presents a certificate from a CA the appliance does not trust"
    )
    assert failed.next_step == trust_site_ca(ctx.settings)


@pytest.mark.parametrize(
    ("proxy", "message", "cause", "next_step"),
    [
        ("http://proxy.example.com:3128",
         "the proxy proxy.example.com:3128 requires authentication (HTTP 407)",
         "the proxy only lets users with a login through, and no user name and password are set",
         "set user:password in the proxy URL on the setup page "
         "(http://user:password@proxy.example.com:3128), save, then retry"),
        ("http://user:wrong@proxy.example.com:3128",
         "the proxy proxy.example.com:3128 refused the user name and password (HTTP 407)",
         "the user name or password in the proxy URL is wrong, or the account may not use the "
         "proxy",
         "correct user:password in the proxy URL on the setup page "
         "(http://user:password@proxy.example.com:3128), save, then retry"),
    ],
)  # fmt: skip
def test_a_proxy_that_wants_a_login(
    tmp_path: Path, proxy: str, message: str, cause: str, next_step: str
) -> None:
    failed = blocker(tmp_path, client=Client(error=error(ProxyAuthenticationRequired)), proxy=proxy)
    assert (str(failed), failed.cause, failed.next_step) == (message, cause, next_step)
    assert "wrong" not in failed.output


def test_hostnames_and_the_proxy_address() -> None:
    assert preflight._hostname("proxy.example.com:3128") == "proxy.example.com"
    assert preflight._hostname("[2001:db8::1]:3128") == "2001:db8::1"
    assert preflight._hostname("") == ""


def test_a_failing_check_is_reported_as_failed(tmp_path: Path) -> None:
    ctx, reports = preflight_context(tmp_path, host=FakeHost(route=None, memory=1))
    with pytest.raises(StepFailed) as caught:
        preflight.run(ctx)
    assert ("network: no default route", "failed: network: no default route") in reports
    assert str(caught.value) == (
        "the host has no default route (and 1 more problem(s), see output)"
    )


def test_a_skew_under_a_second_past_a_zero_tolerance(tmp_path: Path) -> None:
    ctx, _ = preflight_context(tmp_path, client=Client(Ping(401, CLOCK - 0.5)))
    strict = dataclasses.replace(
        ctx.settings, thresholds=dataclasses.replace(ctx.settings.thresholds,
                                                     max_clock_skew_seconds=0.0)
    )  # fmt: skip
    with pytest.raises(StepFailed) as caught:
        preflight.run(dataclasses.replace(ctx, settings=strict))
    assert str(caught.value) == "the clock is 0 s ahead of the registry"
