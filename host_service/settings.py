"""Settings: the appliance defaults, overridden by ``build-info.json``, under ``--root``.

The builder writes ``build-info.json`` into ``<etc>/build-info.json`` on the installed system
(see ``isobuild/installer/build_info.py`` and docs/payload.md); the host service reads the parts it
needs and ignores the rest, so a newer builder can add fields. Every system path, the k3s
ones included, is joined under ``root`` so tests and developers run unprivileged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from host_service.errors import SettingsError

DEFAULT_SETTINGS_FILE = PurePosixPath("/etc/alga-appliance/build-info.json")
# <etc>/registry-ca.pem: where the installer puts the build config's appliance.registry.ca_bundle.
REGISTRY_CA_NAME = "registry-ca.pem"

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_REPOSITORY = re.compile(r"[a-z0-9]+([._/-][a-z0-9]+)*")
_MODE = re.compile(r"0[0-7]{3}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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


class _Reader:
    """Typed access to the settings document; every problem names the key."""

    def __init__(self, document: Mapping[str, Any], source: str) -> None:
        self.document = document
        self.source = source
        self.problems: list[str] = []

    def get(self, dotted: str, kind: type | tuple[type, ...], default: Any) -> Any:
        node: Any = self.document
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        if node is None:
            return default
        ok = isinstance(node, kind) and not (isinstance(node, bool) and kind in (int, float))
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            ok = True
        if not ok:
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.problems.append(f"{self.source}: {dotted}: expected {names}, got {node!r}")
            return default
        return node

    def text(self, dotted: str, default: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.get(dotted, str, default)
        if pattern is not None and not pattern.fullmatch(value):
            self.problems.append(f"{self.source}: {dotted}: invalid value {value!r}")
            return default
        return str(value)

    def strings(self, dotted: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(dotted, list, list(default))
        if not all(isinstance(v, str) for v in value):
            self.problems.append(f"{self.source}: {dotted}: expected a list of strings")
            return default
        return tuple(value)

    def path(self, dotted: str, default: str) -> str:
        value = self.text(dotted, default)
        posix = PurePosixPath(value)
        if not posix.is_absolute() or ".." in posix.parts:
            self.problems.append(
                f"{self.source}: {dotted}: expected an absolute path without '..', got {value!r}"
            )
            return default
        return value


def load_settings(root: Path, settings_file: Path | None = None) -> Settings:
    """Read the settings file (default: ``<root>/etc/alga-appliance/build-info.json``).

    A missing default file means "appliance defaults" (a developer run); a missing file that
    was named explicitly is an error.
    """
    root = root.resolve()
    explicit = settings_file is not None
    path = settings_file if settings_file is not None else rooted(root, DEFAULT_SETTINGS_FILE)
    document: Mapping[str, Any] = {}
    source = "<appliance defaults>"
    if path.exists() or explicit:
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
        document = loaded
        source = str(path)
    return settings_from_document(document, root=root, source=source)


def settings_from_document(
    document: Mapping[str, Any], *, root: Path, source: str = "<document>"
) -> Settings:
    """Build settings from a parsed build-info document (pure; tests use this directly)."""
    r = _Reader(document, source)
    a = "appliance"
    opt = r.path(f"{a}.paths.opt", "/opt/alga-appliance")
    etc = r.path(f"{a}.paths.etc", "/etc/alga-appliance")
    state = r.path(f"{a}.paths.state", "/var/lib/alga-appliance")
    k3s_binary = r.path("payload.k3s.binary", "/usr/local/bin/k3s")
    k3s_images = r.path("payload.k3s.images_dir", "/var/lib/rancher/k3s/agent/images")
    payload_manifest = r.path("payload.manifest", f"{opt}/payload-manifest.json")
    flux_install = r.path("payload.flux.install_yaml", f"{opt}/flux-install/install.yaml")
    archives = []
    for i, item in enumerate(r.get("payload.k3s.image_archives", list, [])):
        if not (
            isinstance(item, Mapping)
            and isinstance(item.get("file"), str)
            and "/" not in item["file"]
            and isinstance(item.get("sha256"), str)
            and _SHA256.fullmatch(item["sha256"])
        ):
            r.problems.append(
                f"{source}: payload.k3s.image_archives[{i}]: expected file and sha256"
            )
            continue
        archives.append(ImageArchive(file=item["file"], sha256=item["sha256"]))
    ca_bundle = r.get(f"{a}.registry.ca_bundle", str, None)
    paths = Paths(
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
        payload_manifest=rooted(root, payload_manifest),
        flux_install=rooted(root, flux_install),
    )
    hs = f"{a}.host_service"
    port = r.get(f"{hs}.port", int, 8080)
    if not 1 <= port <= 65535:
        r.problems.append(f"{source}: {hs}.port: expected 1..65535, got {port}")
    mode = r.text(f"{a}.k3s.write_kubeconfig_mode", "0600", _MODE)
    if int(mode, 8) & 0o077:
        r.problems.append(
            f"{source}: {a}.k3s.write_kubeconfig_mode: {mode} lets others read the cluster "
            "admin credentials; use 0600"
        )
    timeouts = Timeouts(
        **{
            name: float(r.get(f"{hs}.timeouts.{name}", float, getattr(Timeouts(), name)))
            for name in Timeouts.__dataclass_fields__
        }
    )
    thresholds = Thresholds(
        min_free_disk_bytes=r.get(f"{hs}.min_free_disk_bytes", int, Thresholds.min_free_disk_bytes),
        min_memory_bytes=r.get(f"{hs}.min_memory_bytes", int, Thresholds.min_memory_bytes),
        max_clock_skew_seconds=float(
            r.get(f"{hs}.max_clock_skew_seconds", float, Thresholds.max_clock_skew_seconds)
        ),
    )
    http = _http_limits(r, f"{hs}.http")
    build = {
        key: str(document[key])
        for key in ("name", "version", "build_id")
        if isinstance(document.get(key), str | int)
    }
    settings = Settings(
        paths=paths,
        port=port,
        namespaces=Namespaces(
            flux=r.text(f"{a}.namespaces.flux", "flux-system", _NAME),
            system=r.text(f"{a}.namespaces.system", "alga-system", _NAME),
            workloads=r.text(f"{a}.namespaces.workloads", "msp", _NAME),
        ),
        registry=Registry(
            host=r.text(f"{a}.registry.host", "ghcr.io", _HOST),
            release_repository=r.text(
                f"{a}.registry.release_repository",
                "nine-minds/alga-appliance-release",
                _REPOSITORY,
            ),
            default_channel=r.text(f"{a}.registry.default_channel", "stable", _NAME),
            ca_bundle=rooted(root, ca_bundle) if ca_bundle else None,
        ),
        k3s=K3s(
            version=r.text("payload.k3s.version", ""),
            image_archives=tuple(archives),
            disable=r.strings(f"{a}.k3s.disable", ("traefik", "servicelb")),
            kubeconfig_mode=mode,
            smoke_image=r.text("payload.k3s.smoke_image", K3s.smoke_image),
        ),
        values_profile=r.text(f"{a}.values_profile", "single-node", _NAME),
        kubectl=r.strings(f"{hs}.kubectl", ()),
        timeouts=timeouts,
        thresholds=thresholds,
        http=http,
        standin=bool(r.get("standin", bool, False)),
        build=build,
        source=source,
    )
    if r.problems:
        raise SettingsError(
            "\n".join(r.problems),
            hint="build-info.json is written by isobuild; rebuild or restore it",
        )
    return settings


def _http_limits(r: _Reader, prefix: str) -> HttpLimits:
    default = HttpLimits()
    values: dict[str, Any] = {}
    for name in HttpLimits.__dataclass_fields__:
        fallback = getattr(default, name)
        value = r.get(f"{prefix}.{name}", type(fallback), fallback)
        if value <= 0:
            r.problems.append(
                f"{r.source}: {prefix}.{name}: expected a positive number, got {value}"
            )
            value = fallback
        values[name] = type(fallback)(value)
    return HttpLimits(**values)
