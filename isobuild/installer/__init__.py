"""What the installer gets: autoinstall, build-info, overlays and the /appliance payload."""

from isobuild.installer.autoinstall import AutoinstallFiles, render_autoinstall
from isobuild.installer.payload import (
    FetchedPayload,
    PayloadPlan,
    fetch_payload,
    plan_payload,
)

__all__ = [
    "AutoinstallFiles",
    "FetchedPayload",
    "PayloadPlan",
    "fetch_payload",
    "plan_payload",
    "render_autoinstall",
]
