"""How the service reaches the release registry: the operator's proxy, the site CA."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import requests

from host_service.intent import SetupIntent
from host_service.oci import RegistryClient
from host_service.settings import Settings

RegistryAccess = Callable[[], RegistryClient]


def bypasses_proxy(host: str, no_proxy: Sequence[str]) -> bool:
    """curl's ``no_proxy`` rules: ``*``, exact host, domain suffix (``.example.com`` or
    ``example.com``), IP address or CIDR. Ports in entries are ignored."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy:
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        domain = entry.lstrip(".").rstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def proxies_for(url: str, intent: SetupIntent) -> dict[str, str]:
    """The proxies for ``url`` from the operator's inputs; the environment is never read."""
    if not intent.proxy:
        return {}
    if bypasses_proxy(urlsplit(url).hostname or "", intent.no_proxy):
        return {}
    return {"http": intent.proxy, "https": intent.proxy}


def trust_site_ca(settings: Settings) -> str:
    """What to do when the registry's certificate does not verify (preflight, release).

    The lasting fix is in the build config; on an installed appliance the same file can be
    put where the installer would have, and named in the settings the service reads.
    """
    paths = settings.paths
    installed = PurePosixPath("/") / paths.registry_ca.relative_to(paths.root)
    return (
        "trust the site CA: set appliance.registry.ca_bundle to its PEM file in the build "
        "config, rebuild the ISO and reinstall; or, on this appliance, put the PEM file at "
        f'{paths.registry_ca}, set appliance.registry.ca_bundle to "{installed}" in '
        f"{paths.build_info} and restart appliance-setup.service; then retry"
    )


def registry_access(
    settings: Settings,
    intent: SetupIntent,
    *,
    session: Callable[[], requests.Session] = requests.Session,
) -> RegistryAccess:
    """Clients for the release registry with the operator's proxy and the site CA; every
    registry read of the service (preflight's probe, the release) goes through one.
    ``session`` makes the HTTP session (tests give one with an in-memory transport)."""

    def open_client() -> RegistryClient:
        return RegistryClient(
            settings.registry.host,
            ca_bundle=settings.registry.ca_bundle,
            proxies=proxies_for(f"https://{settings.registry.host}/v2/", intent),
            timeout=settings.timeouts.registry,
            session=session(),
        )

    return open_client
