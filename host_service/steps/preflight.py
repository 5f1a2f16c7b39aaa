"""Preflight: DNS, the registry over HTTPS (through the proxy), default route, disk, memory,
clock. Every check runs; every problem is reported, the first one as the blocker.

The wording of each problem is data (``PROBLEMS``, ``REGISTRY_PROBLEMS``); the checks only
measure and pick an entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from host_service.host import HostError
from host_service.oci import (
    Ping,
    ProxyAuthenticationRequired,
    ProxyFailed,
    RegistryError,
    RegistryTimeout,
    RegistryTLSError,
)
from host_service.registry_access import proxies_for, trust_site_ca
from host_service.steps.blockers import Wording, WordingTable
from host_service.steps.context import StepContext, StepFailed

GIB = 1024**3

_DNS_NEXT = "check the DNS servers (resolvectl status) or the proxy address in setup, then retry"
_REACH = "cannot reach the registry {registry} over HTTPS"
PROBLEMS: Mapping[str, Wording] = {
    "dns-registry": Wording(
        "DNS lookup of the registry host {name} failed",
        "no DNS server configured, or it cannot resolve public names",
        _DNS_NEXT,
    ),
    "dns-proxy": Wording(
        "DNS lookup of the proxy host {name} failed",
        "the proxy host name is wrong or DNS cannot resolve it",
        _DNS_NEXT,
    ),
    "registry-status": Wording(
        "the registry answered HTTP {status} instead of 200 or 401",
        "something between the appliance and the registry (a captive portal or a filtering "
        "proxy) answers in its place",
        "open {url} from another machine on the same network and compare; allow the "
        "registry through the firewall or proxy, then retry",
    ),
    "proxy-login-missing": Wording(
        "the proxy {proxy} requires authentication (HTTP 407)",
        "the proxy only lets users with a login through, and no user name and password are set",
        "set user:password in the proxy URL on the setup page "
        "(http://user:password@{proxy}), save, then retry",
    ),
    "proxy-login-refused": Wording(
        "the proxy {proxy} refused the user name and password (HTTP 407)",
        "the user name or password in the proxy URL is wrong, or the account may not use the proxy",
        "correct user:password in the proxy URL on the setup page "
        "(http://user:password@{proxy}), save, then retry",
    ),
    "no-route": Wording(
        "the host has no default route",
        "k3s needs a default route to pick the node address",
        "configure a gateway (netplan), or on an isolated network add a black-hole default "
        "route (ip route add blackhole default), then retry",
    ),
    "disk": Wording(
        "not enough free disk space for {path}: {free:.1f} GiB, need {need:.1f} GiB",
        "the disk is too small or filled by something else",
        "free space or grow the volume (lvextend + resize2fs), then retry",
    ),
    "memory": Wording(
        "not enough memory: {memory:.1f} GiB, need {need:.1f} GiB",
        "the machine or VM has too little RAM for k3s and the application",
        "give the machine more memory, then retry",
    ),
    "clock": Wording(
        "the clock is {seconds:.0f} s {direction} the registry",
        "no time synchronisation; TLS certificates and registry tokens fail with a wrong clock",
        "enable NTP (timedatectl set-ntp true) or set the time, then retry",
    ),
}

# A registry probe without an HTTP answer, by the client's error class (most specific first).
REGISTRY_PROBLEMS = WordingTable(
    {
        RegistryTLSError: Wording(
            _REACH,
            "TLS verification failed: a TLS-inspecting proxy or firewall, or a private "
            "registry, presents a certificate from a CA the appliance does not trust",
            "{trust_site_ca}",
        ),
        ProxyFailed: Wording(
            _REACH,
            "the proxy {proxy} could not be reached, or refused to open a connection to the "
            "registry",
            "check the proxy address on the setup page and that the proxy allows HTTPS "
            "(CONNECT to port 443) to {registry}, then retry",
        ),
        RegistryTimeout: Wording(
            _REACH,
            "outbound HTTPS is blocked or dropped by a firewall{or_proxy}",
            "{reach_advice}",
        ),
        RegistryError: Wording(
            _REACH,
            "outbound HTTPS to the registry is blocked, or the registry is down",
            "{reach_advice}",
        ),
    }
)
_DIRECT_ADVICE = (
    "allow outbound HTTPS (443) to the registry, or set a proxy on the setup page if this "
    "site needs one, then retry"
)
_PROXIED_ADVICE = (
    "check that the proxy {proxy} lets the appliance reach {registry} (CONNECT to port "
    "443), then retry"
)


@dataclass(frozen=True)
class Finding:
    """One check's line for the status page and the output box, and its problem if any."""

    text: str
    problem: StepFailed | None = None


def probe(ctx: StepContext) -> bool:
    return False  # the checks are the work: they always run


def run(ctx: StepContext) -> None:
    lines: list[str] = []
    problems: list[StepFailed] = []

    def record(finding: Finding) -> bool:
        ok = finding.problem is None
        lines.append(f"{'ok  ' if ok else 'FAIL'}  {finding.text}")
        ctx.report(finding.text, detail=f"{'ok' if ok else 'failed'}: {finding.text}")
        if finding.problem is not None:
            problems.append(finding.problem)
        return ok

    ping: Ping | None = None
    if record(_dns(ctx)):
        finding, ping = _registry(ctx)
        record(finding)
    for finding in (_route(ctx), *_disk(ctx), _memory(ctx)):
        record(finding)
    if ping is not None and ping.date is not None:
        record(_clock(ctx, ctx.host.now() - ping.date))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s), see output)" if problems[1:] else ""
        raise StepFailed(
            first.message + more,
            cause=first.cause,
            next_step=first.next_step,
            output="\n".join(lines),
        )


def _hostname(host_port: str) -> str:
    return urlsplit(f"//{host_port}").hostname or host_port


def _proxy(ctx: StepContext) -> str | None:
    """``host:port`` of the operator's proxy for the registry (never its credentials)."""
    proxies = proxies_for(f"https://{ctx.settings.registry.host}/v2/", ctx.intent)
    if not proxies:
        return None
    parts = urlsplit(proxies["https"])
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _dns(ctx: StepContext) -> Finding:
    # With a proxy the proxy resolves the registry, so the proxy's name must resolve.
    proxy = _proxy(ctx)
    what = "proxy" if proxy else "registry"
    name = _hostname(proxy or ctx.settings.registry.host)
    try:
        addresses = ctx.host.resolve(name)
    except HostError as exc:
        return Finding(
            f"DNS: {what} {name} does not resolve ({exc})",
            PROBLEMS[f"dns-{what}"].failed(name=name),
        )
    return Finding(f"DNS: {what} {name} resolves to {', '.join(addresses[:4])}")


def _registry(ctx: StepContext) -> tuple[Finding, Ping | None]:
    """``GET /v2/`` through the registry client, as every later registry read goes."""
    registry = ctx.settings.registry.host
    url = f"https://{registry}/v2/"
    proxy = _proxy(ctx)
    try:
        with ctx.registry() as client:
            ping = client.ping()
    except RegistryError as exc:
        return Finding(f"HTTPS: {exc.detail}", _unreachable(ctx, exc, proxy)), None
    if ping.status not in (200, 401):
        problem = PROBLEMS["registry-status"].failed(status=ping.status, url=url)
        return Finding(f"HTTPS: {url} answered {ping.status}", problem), None
    via = f" via the proxy {proxy}" if proxy else ""
    return Finding(f"HTTPS: {url} answers {ping.status}{via}"), ping


def _unreachable(ctx: StepContext, exc: RegistryError, proxy: str | None) -> StepFailed:
    if isinstance(exc, ProxyAuthenticationRequired):
        login = "refused" if urlsplit(ctx.intent.proxy or "").password else "missing"
        return PROBLEMS[f"proxy-login-{login}"].failed(proxy=proxy)
    registry = ctx.settings.registry.host
    advice = (_PROXIED_ADVICE if proxy else _DIRECT_ADVICE).format(proxy=proxy, registry=registry)
    return REGISTRY_PROBLEMS.failed(
        exc,
        registry=registry,
        proxy=proxy,
        or_proxy=" or the proxy" if proxy else "",
        reach_advice=advice,
        trust_site_ca=trust_site_ca(ctx.settings),
    )


def _route(ctx: StepContext) -> Finding:
    route = ctx.host.default_route()
    if route:
        return Finding(f"network: default route via {route}")
    return Finding("network: no default route", PROBLEMS["no-route"].failed())


def _disk(ctx: StepContext) -> list[Finding]:
    need = ctx.settings.thresholds.min_free_disk_bytes
    findings = []
    for path in (ctx.settings.paths.state, ctx.settings.paths.k3s_images):
        free = ctx.host.free_bytes(path)
        if free < need:
            problem = PROBLEMS["disk"].failed(path=path, free=free / GIB, need=need / GIB)
            findings.append(Finding(f"disk: only {free / GIB:.1f} GiB free for {path}", problem))
            break
        findings.append(Finding(f"disk: {free / GIB:.1f} GiB free for {path}"))
    return findings


def _memory(ctx: StepContext) -> Finding:
    memory = ctx.host.memory_bytes()
    need = ctx.settings.thresholds.min_memory_bytes
    text = f"memory: {memory / GIB:.1f} GiB"
    if memory >= need:
        return Finding(text)
    return Finding(text, PROBLEMS["memory"].failed(memory=memory / GIB, need=need / GIB))


def _clock(ctx: StepContext, skew: float) -> Finding:
    if abs(skew) <= ctx.settings.thresholds.max_clock_skew_seconds:
        return Finding(f"clock: within {abs(skew):.0f} s of the registry")
    direction = "ahead of" if skew > 0 else "behind"
    problem = PROBLEMS["clock"].failed(seconds=abs(skew), direction=direction)
    return Finding(f"clock: {skew:+.0f} s off the registry's clock", problem)
