"""The files that configure k3s on the host: config.yaml, the unit and its environment."""

from __future__ import annotations

import json

from host_service.intent import SetupIntent
from host_service.settings import Settings

UNIT = "k3s.service"
HEADER = "# Managed by the appliance host service (appliance-setup.service); edits are replaced.\n"

# Cluster-internal ranges and names never go through the proxy (k3s defaults).
CLUSTER_NO_PROXY = ("127.0.0.0/8", "10.42.0.0/16", "10.43.0.0/16", ".svc", ".cluster.local")


def render_config(settings: Settings) -> str:
    """``/etc/rancher/k3s/config.yaml``; keys are k3s server flags (JSON is valid YAML)."""
    lines = [HEADER.rstrip("\n")]
    lines.append(f"write-kubeconfig-mode: {json.dumps(settings.k3s.kubeconfig_mode)}")
    if settings.k3s.disable:
        lines.append("disable:")
        lines.extend(f"  - {json.dumps(component)}" for component in settings.k3s.disable)
    return "\n".join(lines) + "\n"


def render_unit() -> str:
    """The k3s server unit, equivalent to what k3s' install.sh writes for a server."""
    return HEADER + (
        "[Unit]\n"
        "Description=Lightweight Kubernetes\n"
        "Documentation=https://k3s.io\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
        "\n"
        "[Service]\n"
        "Type=notify\n"
        "EnvironmentFile=-/etc/systemd/system/k3s.service.env\n"
        "KillMode=process\n"
        "Delegate=yes\n"
        "LimitNOFILE=1048576\n"
        "LimitNPROC=infinity\n"
        "LimitCORE=infinity\n"
        "TasksMax=infinity\n"
        "TimeoutStartSec=0\n"
        "Restart=always\n"
        "RestartSec=5s\n"
        "ExecStartPre=-/sbin/modprobe br_netfilter\n"
        "ExecStartPre=-/sbin/modprobe overlay\n"
        "ExecStart=/usr/local/bin/k3s server\n"
    )


def render_env(intent: SetupIntent) -> str:
    """``k3s.service.env``: the operator's proxy for containerd's pulls (0600: may hold a
    password)."""
    if not intent.proxy:
        return HEADER
    no_proxy = ",".join(dict.fromkeys([*CLUSTER_NO_PROXY, *intent.no_proxy]))
    return HEADER + (
        f"HTTP_PROXY={intent.proxy}\nHTTPS_PROXY={intent.proxy}\nNO_PROXY={no_proxy}\n"
    )
