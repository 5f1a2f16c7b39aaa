"""Where the project's own files live: templates, topology, overlays, defaults, schemas."""

from __future__ import annotations

from pathlib import Path

# isobuild runs from a checkout (pip install -e .): the top-level directories beside the
# package are its resources.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
AUTOINSTALL_DIR = PROJECT_ROOT / "autoinstall"
OVERLAYS_DIR = PROJECT_ROOT / "overlays"
FLUX_DIR = PROJECT_ROOT / "flux"
HOST_SERVICE_DIR = PROJECT_ROOT / "host_service"
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_CONFIG = Path(__file__).resolve().parent / "defaults" / "appliance.yaml"
DEFAULT_LOCK = PROJECT_ROOT / "payload.lock.yaml"
