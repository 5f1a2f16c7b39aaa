"""Settings: ``build-info.json`` under ``--root``, or the appliance defaults without one.

The builder writes ``build-info.json`` into ``<etc>/build-info.json`` on the installed system
(``isobuild/installer/build_info.py``, docs/payload.md). Its schema ships here
(``schemas/build-info-v1.json``): every load is validated against it, so a hand-edited typo
is an error naming the key, never silently ignored; the builder checks what it writes
against the same file. Every system path, the k3s ones included, is joined under ``root``
so tests and developers run unprivileged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from host_service.errors import SettingsError
from host_service.schema import Schema, SchemaProblem

DEFAULT_SETTINGS_FILE = PurePosixPath("/etc/alga-appliance/build-info.json")
SCHEMA_ID = "alga.appliance.build-info/v1"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "build-info-v1.json"
DEFAULT_OPT = "/opt/alga-appliance"
DEFAULT_ETC = "/etc/alga-appliance"
DEFAULT_STATE = "/var/lib/alga-appliance"
# Fixed by k3s, not by the appliance config.
DEFAULT_K3S_BINARY = "/usr/local/bin/k3s"
DEFAULT_K3S_IMAGES = "/var/lib/rancher/k3s/agent/images"
# <etc>/registry-ca.pem: where the installer puts the build config's appliance.registry.ca_bundle.
REGISTRY_CA_NAME = "registry-ca.pem"


@dataclass(frozen=True, kw_only=True)
class Namespaces:
    flux: str = "flux-system"
    system: str = "alga-system"
    workloads: str = "msp"

    @property
    def all(self) -> tuple[str, str, str]:
        return (self.flux, self.system, self.workloads)


@dataclass(frozen=True, kw_only=True)
class Registry:
    host: str = "ghcr.io"
    release_repository: str = "nine-minds/alga-appliance-release"
    default_channel: str = "stable"
    # A PEM bundle that replaces the system trust store (a site's TLS-inspecting proxy).
    ca_bundle: Path | None = None


@dataclass(frozen=True, kw_only=True)
class ImageArchive:
    """An image archive the installer put into the k3s images directory, with its sha256."""

    file: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class K3s:
    version: str = ""
    image_archives: tuple[ImageArchive, ...] = ()
    disable: tuple[str, ...] = ("traefik", "servicelb")
    kubeconfig_mode: str = "0600"
    # Busybox from the k3s airgap images: the storage smoke test must not pull anything.
    smoke_image: str = "rancher/mirrored-library-busybox:1.36.1"


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Seconds; the appliance defaults are generous, tests shorten them."""

    kube_call: float = 60.0
    k3s_ready: float = 600.0
    node_ready: float = 300.0
    storage: float = 300.0
    flux_ready: float = 600.0
    reconcile: float = 1800.0
    registry: float = 30.0
    poll_interval: float = 2.0
    # The status pollers read each resource kind once per this many seconds (host_service/
    # operate/); a Kustomization or HelmRelease not Ready for ``not_ready_blocker`` becomes
    # a runtime blocker.
    status_poll: float = 5.0
    not_ready_blocker: float = 600.0


@dataclass(frozen=True, kw_only=True)
class HttpLimits:
    """What one client may hold of the HTTP server (docs/host-service.md, "Limits")."""

    # Requests answered at once, one thread each; past it /healthz is still answered and
    # anything else gets 503.
    max_connections: int = 64
    # Connections still sending their request; they hold no thread. Past it the oldest
    # is closed.
    max_waiting: int = 256
    # Seconds from connect to the end of the request (line, headers, body): slow clients
    # are cut off with 408.
    request_timeout: float = 20.0
    # Seconds an answer may wait for a client that stopped reading.
    send_timeout: float = 60.0


_HTTP_TYPES = {f.name: type(getattr(HttpLimits(), f.name)) for f in fields(HttpLimits)}


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    min_free_disk_bytes: int = 20 * 1024**3
    min_memory_bytes: int = 4 * 1024**3
    max_clock_skew_seconds: float = 300.0


@dataclass(frozen=True, kw_only=True)
class Paths:
    """Absolute paths, already joined under ``root``."""

    root: Path
    opt: Path
    etc: Path
    state: Path
    k3s_binary: Path
    k3s_config: Path
    kubeconfig: Path
    k3s_images: Path
    k3s_unit: Path
    k3s_env: Path
    issue: Path
    payload_manifest: Path
    flux_install: Path

    @property
    def build_info(self) -> Path:
        """Where the builder installs ``build-info.json``, the settings the unit loads."""
        return self.etc / DEFAULT_SETTINGS_FILE.name

    @property
    def registry_ca(self) -> Path:
        return self.etc / REGISTRY_CA_NAME

    @property
    def state_file(self) -> Path:
        return self.state / "bootstrap-state.json"

    @property
    def intent_file(self) -> Path:
        return self.state / "setup-inputs.json"

    @property
    def token_file(self) -> Path:
        return self.state / "setup-token"

    @property
    def session_key_file(self) -> Path:
        return self.state / "session-key"

    @property
    def revoked_sessions_file(self) -> Path:
        return self.state / "revoked-sessions.json"

    @property
    def lock_file(self) -> Path:
        return self.state / "host-service.lock"

    @property
    def release_dir(self) -> Path:
        return self.state / "release"

    @property
    def resolution_file(self) -> Path:
        return self.release_dir / "resolution.json"

    @property
    def values_dir(self) -> Path:
        return self.state / "values"

    @property
    def selection_file(self) -> Path:
        return self.state / "release-selection.json"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the service reads from its environment; built once at start."""

    paths: Paths
    port: int = 8080
    namespaces: Namespaces = Namespaces()
    registry: Registry = Registry()
    k3s: K3s = K3s()
    values_profile: str = "single-node"
    # argv prefix that runs kubectl; ``--kubeconfig`` is always added.
    kubectl: tuple[str, ...] = ()
    timeouts: Timeouts = Timeouts()
    thresholds: Thresholds = Thresholds()
    http: HttpLimits = HttpLimits()
    standin: bool = False
    build: Mapping[str, str] = field(default_factory=dict)
    source: str = "<appliance defaults>"

    @property
    def kubectl_argv(self) -> tuple[str, ...]:
        prefix = self.kubectl or (str(self.paths.k3s_binary), "kubectl")
        return (*prefix, "--kubeconfig", str(self.paths.kubeconfig))


def rooted(root: Path, path: str | PurePosixPath) -> Path:
    """``path`` (absolute, POSIX) under ``root``; ``root=/`` leaves it unchanged."""
    posix = PurePosixPath(path)
    if not posix.is_absolute() or ".." in posix.parts:
        raise ValueError(f"expected an absolute path without '..', got {str(path)!r}")
    return root.joinpath(*posix.parts[1:])


def _schema() -> Schema:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = Schema.load(SCHEMA_FILE)
    return _SCHEMA


_SCHEMA: Schema | None = None


def _paths(
    root: Path,
    *,
    opt: str = DEFAULT_OPT,
    etc: str = DEFAULT_ETC,
    state: str = DEFAULT_STATE,
    k3s_binary: str = DEFAULT_K3S_BINARY,
    k3s_images: str = DEFAULT_K3S_IMAGES,
    payload_manifest: str | None = None,
    flux_install: str | None = None,
) -> Paths:
    return Paths(
        root=root,
        opt=rooted(root, opt),
        etc=rooted(root, etc),
        state=rooted(root, state),
        k3s_binary=rooted(root, k3s_binary),
        k3s_config=rooted(root, "/etc/rancher/k3s/config.yaml"),
        kubeconfig=rooted(root, "/etc/rancher/k3s/k3s.yaml"),
        k3s_images=rooted(root, k3s_images),
        k3s_unit=rooted(root, "/etc/systemd/system/k3s.service"),
        k3s_env=rooted(root, "/etc/systemd/system/k3s.service.env"),
        issue=rooted(root, "/etc/issue"),
        payload_manifest=rooted(root, payload_manifest or f"{opt}/payload-manifest.json"),
        flux_install=rooted(root, flux_install or f"{opt}/flux-install/install.yaml"),
    )


def default_settings(root: Path) -> Settings:
    """The appliance defaults under ``root``: a developer run without ``build-info.json``."""
    return Settings(paths=_paths(root.resolve()))


def load_settings(root: Path, settings_file: Path | None = None) -> Settings:
    """Read the settings file (default: ``<root>/etc/alga-appliance/build-info.json``).

    A missing default file means "appliance defaults" (a developer run); a missing file that
    was named explicitly is an error.
    """
    root = root.resolve()
    explicit = settings_file is not None
    path = settings_file if settings_file is not None else rooted(root, DEFAULT_SETTINGS_FILE)
    if not (explicit or path.exists()):
        return default_settings(root)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SettingsError(
            f"{path}: settings file not found", hint="pass an existing --settings FILE"
        ) from exc
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"{path}: not readable JSON: {exc}",
            hint="restore build-info.json from the installation medium",
        ) from exc
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path}: expected a JSON object at the top level")
    return settings_from_document(loaded, root=root, source=str(path))


def settings_from_document(
    document: Mapping[str, Any], *, root: Path, source: str = "<document>"
) -> Settings:
    """Validate a parsed build-info document against the schema the service ships
    (``schemas/build-info-v1.json``) and build the settings from it (pure).

    Every problem is reported at once, each as ``source: key: what``: an unknown key (with
    the known key it is probably a typo of), a wrong type, a missing key, a bad value.
    """
    problems = _schema().problems(document) or _consistency_problems(document)
    if problems:
        raise SettingsError(
            "\n".join(f"{source}: {problem}" for problem in problems),
            hint="build-info.json is written by isobuild: fix the key named, or restore the "
            "file from the installation medium (/appliance/build-info.json)",
        )
    return _settings(document, root=root, source=source)


def _consistency_problems(document: Mapping[str, Any]) -> list[SchemaProblem]:
    """What the schema cannot say."""
    key = "appliance.k3s.write_kubeconfig_mode"
    mode = document["appliance"]["k3s"]["write_kubeconfig_mode"]
    if int(mode, 8) & 0o077:
        return [
            SchemaProblem(key, f"{mode} lets others read the cluster admin credentials; use 0600")
        ]
    return []


def _settings(document: Mapping[str, Any], *, root: Path, source: str) -> Settings:
    """Settings from a document the schema accepted (every required key is there)."""
    appliance = document["appliance"]
    hs = appliance["host_service"]
    payload = document["payload"]
    k3s = payload["k3s"]
    registry = appliance["registry"]
    ca_bundle = registry.get("ca_bundle")
    defaults = Thresholds()
    return Settings(
        paths=_paths(
            root,
            opt=appliance["paths"]["opt"],
            etc=appliance["paths"]["etc"],
            state=appliance["paths"]["state"],
            k3s_binary=k3s["binary"],
            k3s_images=k3s["images_dir"],
            payload_manifest=payload["manifest"],
            flux_install=payload["flux"]["install_yaml"],
        ),
        port=hs["port"],
        namespaces=Namespaces(**appliance["namespaces"]),
        registry=Registry(
            host=registry["host"],
            release_repository=registry["release_repository"],
            default_channel=registry["default_channel"],
            ca_bundle=rooted(root, ca_bundle) if ca_bundle else None,
        ),
        k3s=K3s(
            version=k3s["version"],
            image_archives=tuple(
                ImageArchive(file=a["file"], sha256=a["sha256"]) for a in k3s["image_archives"]
            ),
            disable=tuple(appliance["k3s"]["disable"]),
            kubeconfig_mode=appliance["k3s"]["write_kubeconfig_mode"],
            smoke_image=k3s.get("smoke_image", K3s.smoke_image),
        ),
        values_profile=appliance["values_profile"],
        kubectl=tuple(hs.get("kubectl", ())),
        timeouts=Timeouts(**{k: float(v) for k, v in hs.get("timeouts", {}).items()}),
        thresholds=Thresholds(
            min_free_disk_bytes=hs.get("min_free_disk_bytes", defaults.min_free_disk_bytes),
            min_memory_bytes=hs.get("min_memory_bytes", defaults.min_memory_bytes),
            max_clock_skew_seconds=float(
                hs.get("max_clock_skew_seconds", defaults.max_clock_skew_seconds)
            ),
        ),
        http=HttpLimits(**{k: _HTTP_TYPES[k](v) for k, v in hs.get("http", {}).items()}),
        standin=document["standin"],
        build={key: str(document[key]) for key in ("name", "version", "build_id")},
        source=source,
    )
