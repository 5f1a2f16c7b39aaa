"""Preflight: DNS, HTTPS to the registry (through the proxy), default route, disk, memory, clock."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from host_service.host import HostError
from host_service.registry_access import proxies_for, trust_site_ca
from host_service.steps.context import StepContext, StepFailed

GIB = 1024**3


@dataclass(frozen=True)
class Problem:
    message: str
    cause: str
    next_step: str


def probe(ctx: StepContext) -> bool:
    return False  # the checks are the work: they always run


def _hostname(host_port: str) -> str:
    return urlsplit(f"//{host_port}").hostname or host_port


def run(ctx: StepContext) -> None:
    settings = ctx.settings
    registry = settings.registry.host
    url = f"https://{registry}/v2/"
    proxies = proxies_for(url, ctx.intent)
    lines: list[str] = []
    problems: list[Problem] = []

    def ok(text: str) -> None:
        lines.append(f"ok    {text}")
        ctx.report(text, detail=f"ok: {text}")

    def bad(text: str, problem: Problem) -> None:
        lines.append(f"FAIL  {text}")
        ctx.report(text, detail=f"failed: {text}")
        problems.append(problem)

    # DNS: with a proxy the proxy resolves the registry, so the proxy's name must resolve.
    name = _hostname(urlsplit(proxies["https"]).netloc) if proxies else _hostname(registry)
    what = "proxy" if proxies else "registry"
    try:
        addresses = ctx.host.resolve(name)
        ok(f"DNS: {what} {name} resolves to {', '.join(addresses[:4])}")
        dns_ok = True
    except HostError as exc:
        dns_ok = False
        bad(
            f"DNS: {what} {name} does not resolve ({exc})",
            Problem(
                f"DNS lookup of the {what} host {name} failed",
                "no DNS server configured, or it cannot resolve public names"
                if not proxies
                else "the proxy host name is wrong or DNS cannot resolve it",
                "check the DNS servers (resolvectl status) or the proxy address in setup, "
                "then retry",
            ),
        )

    skew: float | None = None
    if dns_ok:
        try:
            answer = ctx.host.https_get(
                url,
                proxies=proxies,
                ca_bundle=settings.registry.ca_bundle,
                timeout=settings.timeouts.registry,
            )
            if answer.status in (200, 401):
                via = " via the proxy" if proxies else ""
                ok(f"HTTPS: {url} answers {answer.status}{via}")
                if answer.date is not None:
                    skew = ctx.host.now() - answer.date
            else:
                bad(
                    f"HTTPS: {url} answered {answer.status}",
                    Problem(
                        f"the registry answered HTTP {answer.status} instead of 200 or 401",
                        "something between the appliance and the registry (a captive portal or "
                        "a filtering proxy) answers in its place",
                        f"open {url} from another machine on the same network and compare; "
                        "allow the registry through the firewall or proxy, then retry",
                    ),
                )
        except HostError as exc:
            bad(f"HTTPS: {exc}", _https_problem(ctx, str(exc), bool(proxies)))

    route = ctx.host.default_route()
    if route:
        ok(f"network: default route via {route}")
    else:
        bad(
            "network: no default route",
            Problem(
                "the host has no default route",
                "k3s needs a default route to pick the node address",
                "configure a gateway (netplan), or on an isolated network add a black-hole "
                "default route (ip route add blackhole default), then retry",
            ),
        )

    minimum = settings.thresholds.min_free_disk_bytes
    for path in (settings.paths.state, settings.paths.k3s_images):
        free = ctx.host.free_bytes(path)
        if free >= minimum:
            ok(f"disk: {free / GIB:.1f} GiB free for {path}")
        else:
            bad(
                f"disk: only {free / GIB:.1f} GiB free for {path}",
                Problem(
                    f"not enough free disk space for {path}: {free / GIB:.1f} GiB, "
                    f"need {minimum / GIB:.1f} GiB",
                    "the disk is too small or filled by something else",
                    "free space or grow the volume (lvextend + resize2fs), then retry",
                ),
            )
            break

    memory = ctx.host.memory_bytes()
    need = settings.thresholds.min_memory_bytes
    if memory >= need:
        ok(f"memory: {memory / GIB:.1f} GiB")
    else:
        bad(
            f"memory: {memory / GIB:.1f} GiB",
            Problem(
                f"not enough memory: {memory / GIB:.1f} GiB, need {need / GIB:.1f} GiB",
                "the machine or VM has too little RAM for k3s and the application",
                "give the machine more memory, then retry",
            ),
        )

    if skew is not None:
        limit = settings.thresholds.max_clock_skew_seconds
        if abs(skew) <= limit:
            ok(f"clock: within {abs(skew):.0f} s of the registry")
        else:
            bad(
                f"clock: {skew:+.0f} s off the registry's clock",
                Problem(
                    f"the clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} "
                    "the registry",
                    "no time synchronisation; TLS certificates and registry tokens fail "
                    "with a wrong clock",
                    "enable NTP (timedatectl set-ntp true) or set the time, then retry",
                ),
            )

    if problems:
        first = problems[0]
        more = (
            f" (and {len(problems) - 1} more problem(s), see output)" if len(problems) > 1 else ""
        )
        raise StepFailed(
            first.message + more,
            cause=first.cause,
            next_step=first.next_step,
            output="\n".join(lines),
        )


def _https_problem(ctx: StepContext, text: str, proxied: bool) -> Problem:
    message = f"cannot reach the registry {ctx.settings.registry.host} over HTTPS"
    lowered = text.lower()
    if "certificate" in lowered or "ssl" in lowered or "tls" in lowered:
        return Problem(
            message,
            "TLS verification failed: a TLS-inspecting proxy or firewall, or a private "
            "registry, presents a certificate from a CA the appliance does not trust",
            trust_site_ca(ctx.settings),
        )
    if "proxy" in lowered:
        cause = "the proxy refused or could not connect to the registry"
    elif "timed out" in lowered or "timeout" in lowered:
        cause = "outbound HTTPS is blocked or dropped by a firewall" + (
            " or the proxy" if proxied else ""
        )
    else:
        cause = "outbound HTTPS to the registry is blocked, or the registry is down"
    return Problem(
        message,
        cause,
        "allow outbound HTTPS (443) to the registry, or set the proxy in setup, then retry",
    )
