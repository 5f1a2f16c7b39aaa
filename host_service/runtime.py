"""The outside world the service talks to, chosen once at the edge: real, or test doubles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from host_service.host import Host, LinuxHost
from host_service.intent import SetupIntent
from host_service.k3s_binary import K3sBinary, K3sCli
from host_service.kube import Kube, Kubectl
from host_service.registry_access import RegistryAccess, registry_access
from host_service.settings import Settings
from host_service.support.journal import Journal, Journalctl
from host_service.systemd import Systemctl, Systemd


@dataclass(frozen=True)
class Runtime:
    kube: Kube
    systemd: Systemd
    k3s: K3sBinary
    host: Host
    registry: Callable[[Settings, SetupIntent], RegistryAccess]
    journal: Journal = field(default_factory=Journalctl)


def real_runtime(settings: Settings) -> Runtime:
    return Runtime(
        kube=Kubectl(settings.kubectl_argv, timeout=settings.timeouts.kube_call),
        systemd=Systemctl(),
        k3s=K3sCli(),
        host=LinuxHost(),
        registry=registry_access,
    )
