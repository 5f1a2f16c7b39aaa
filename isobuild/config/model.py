"""The build config's shape and defaults: frozen dataclasses, enums and each field's checks."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host_service import settings as host_settings
from isobuild.config.ssh_keys import authorized_key
from isobuild.config.value_checks import (
    FILE_MODE,
    HOSTNAME,
    K8S_NAME,
    LOCALE,
    NAME,
    REPOSITORY,
    USERNAME,
    VERSION,
    VOLUME_ID,
    Check,
    appliance_dir,
    between,
    crypt_hash,
    fixed_namespace,
    gecos_text,
    matches,
    registry_host,
)
from isobuild.resources import DEFAULT_LOCK


# Field metadata that conversion.py reads: check (a value check, run on each item of a list),
# secret (never echoed in a message), unique (no item listed twice), internal (set by the
# loader, never a key of the file).
def _check(fn: Check) -> Any:
    return {"check": fn}


class InteractiveSection(enum.StrEnum):
    NETWORK = "network"
    STORAGE = "storage"
    IDENTITY = "identity"


class StorageLayout(enum.StrEnum):
    LVM = "lvm"
    DIRECT = "direct"


class DiskSize(enum.StrEnum):
    LARGEST = "largest"
    SMALLEST = "smallest"


class Shutdown(enum.StrEnum):
    POWEROFF = "poweroff"
    REBOOT = "reboot"


class AptMode(enum.StrEnum):
    OFFLINE = "offline"
    ONLINE = "online"


class Updates(enum.StrEnum):
    SECURITY = "security"
    ALL = "all"


class SizingPolicy(enum.StrEnum):
    ALL = "all"
    SCALED = "scaled"


class AptFallback(enum.StrEnum):
    ABORT = "abort"
    CONTINUE_ANYWAY = "continue-anyway"
    OFFLINE_INSTALL = "offline-install"


class K3sComponent(enum.StrEnum):
    TRAEFIK = "traefik"
    SERVICELB = "servicelb"
    METRICS_SERVER = "metrics-server"
    COREDNS = "coredns"
    LOCAL_STORAGE = "local-storage"


@dataclass(frozen=True, kw_only=True)
class GrubConfig:
    timeout: int = field(default=5, metadata=_check(between(0, 3600)))
    # Index into the installer menu entries of grub.cfg; 0 is "Try or Install".
    default: int = field(default=0, metadata=_check(between(0, 99)))


@dataclass(frozen=True, kw_only=True)
class IsoConfig:
    # None: derived from name and version (see volume_id_for).
    volume_id: str | None = field(default=None, metadata=_check(VOLUME_ID))
    disk_info: str | None = None
    grub: GrubConfig = GrubConfig()


@dataclass(frozen=True, kw_only=True)
class IdentityConfig:
    hostname: str = field(default="alga-appliance", metadata=_check(HOSTNAME))
    username: str = field(default="alga", metadata=_check(USERNAME))
    realname: str = field(default="Appliance administrator", metadata=_check(gecos_text))
    # None: the account gets the password field "*" (no password matches it; see
    # autoinstall.yaml.j2 for why not "!"); log in with ssh.authorized_keys. Never a
    # plaintext password.
    password_hash: str | None = field(default=None, metadata={"check": crypt_hash, "secret": True})


@dataclass(frozen=True, kw_only=True)
class SshConfig:
    install_server: bool = True
    # Never echoed in messages: a refused value may be a private key.
    authorized_keys: tuple[str, ...] = field(
        default=(), metadata={"check": authorized_key, "secret": True}
    )
    allow_pw: bool = False


@dataclass(frozen=True, kw_only=True)
class DiskMatch:
    size: DiskSize | None = DiskSize.LARGEST
    ssd: bool | None = None
    model: str | None = None
    serial: str | None = None
    path: str | None = None


@dataclass(frozen=True, kw_only=True)
class StorageConfig:
    layout: StorageLayout = StorageLayout.LVM
    match: DiskMatch = DiskMatch()
    # lvm only: "all" gives the root LV the whole volume group (k3s and the PVCs live on
    # root); subiquity's own default, "scaled", leaves half of it unused above 20 GiB.
    sizing_policy: SizingPolicy = SizingPolicy.ALL


@dataclass(frozen=True, kw_only=True)
class AutoinstallConfig:
    interactive_sections: tuple[InteractiveSection, ...] = field(
        default=(), metadata={"unique": True}
    )
    locale: str = field(default="en_US.UTF-8", metadata=_check(LOCALE))
    keyboard_layout: str = field(default="us", metadata=_check(matches(r"[a-z]{2,8}", "a layout")))
    timezone: str = field(default="Etc/UTC", metadata=_check(matches(r"[A-Za-z0-9_+/-]+", "a tz")))
    identity: IdentityConfig = IdentityConfig()
    ssh: SshConfig = SshConfig()
    storage: StorageConfig = StorageConfig()
    shutdown: Shutdown = Shutdown.POWEROFF
    # offline: install only from the ISO, whatever the network (no mirror, no updates);
    # online: use the Ubuntu mirror and install `updates` during the install.
    apt_mode: AptMode = AptMode.OFFLINE
    updates: Updates = Updates.SECURITY
    # online only: what subiquity does when no mirror answers.
    apt_fallback: AptFallback = AptFallback.OFFLINE_INSTALL


@dataclass(frozen=True, kw_only=True)
class AppliancePaths:
    # Distinct and not nested in each other (checked across the three).
    opt: str = field(
        default="/opt/alga-appliance", metadata=_check(appliance_dir("/opt/alga-appliance"))
    )
    etc: str = field(
        default="/etc/alga-appliance", metadata=_check(appliance_dir("/etc/alga-appliance"))
    )
    state: str = field(
        default="/var/lib/alga-appliance",
        metadata=_check(appliance_dir("/var/lib/alga-appliance")),
    )


# The appliance's namespace defaults are the host service's (one place for each name).
_SERVICE_NAMESPACES = host_settings.Namespaces()


@dataclass(frozen=True, kw_only=True)
class Namespaces:
    # Fixed for now (docs/config.md): checked so a build never ships a split appliance.
    flux: str = field(
        default=_SERVICE_NAMESPACES.flux,
        metadata=_check(fixed_namespace(_SERVICE_NAMESPACES.flux)),
    )
    system: str = field(
        default=_SERVICE_NAMESPACES.system,
        metadata=_check(fixed_namespace(_SERVICE_NAMESPACES.system)),
    )
    workloads: str = field(
        default=_SERVICE_NAMESPACES.workloads,
        metadata=_check(fixed_namespace(_SERVICE_NAMESPACES.workloads)),
    )


@dataclass(frozen=True, kw_only=True)
class RegistryConfig:
    host: str = field(default="ghcr.io", metadata=_check(registry_host))
    release_repository: str = field(
        default="nine-minds/alga-appliance-release", metadata=_check(REPOSITORY)
    )
    default_channel: str = field(default="stable", metadata=_check(K8S_NAME))
    # A local PEM file (relative: to the config file's directory), shipped on the ISO and
    # installed as <etc>/registry-ca.pem; checked at load time (isobuild/ca_bundle.py).
    ca_bundle: Path | None = None


@dataclass(frozen=True, kw_only=True)
class K3sConfig:
    disable: tuple[K3sComponent, ...] = (K3sComponent.TRAEFIK, K3sComponent.SERVICELB)
    write_kubeconfig_mode: str = field(default="0600", metadata=_check(FILE_MODE))


@dataclass(frozen=True, kw_only=True)
class HostServiceConfig:
    port: int = field(default=8080, metadata=_check(between(1, 65535)))


@dataclass(frozen=True, kw_only=True)
class ApplianceConfig:
    paths: AppliancePaths = AppliancePaths()
    namespaces: Namespaces = Namespaces()
    registry: RegistryConfig = RegistryConfig()
    k3s: K3sConfig = K3sConfig()
    host_service: HostServiceConfig = HostServiceConfig()
    # A directory of flux/profiles/ with a kustomization (checked at load time).
    values_profile: str = field(default="single-node", metadata=_check(K8S_NAME))


@dataclass(frozen=True, kw_only=True)
class PayloadConfig:
    # Relative paths are resolved against the config file's directory; checked at load time.
    lock: Path = DEFAULT_LOCK


@dataclass(frozen=True, kw_only=True)
class SigningConfig:
    # A key in gpg-agent (its fingerprint) or an OpenPGP secret key file; relative paths
    # are resolved against the config file's directory, and the file must exist. None:
    # SHA256SUMS is not signed.
    key: str | None = field(default=None, metadata=_check(matches(r"\S+", "a fingerprint or path")))


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Everything a build needs to know besides the base ISO and the tools."""

    name: str = field(metadata=_check(NAME))
    version: str = field(metadata=_check(VERSION))
    iso: IsoConfig = IsoConfig()
    autoinstall: AutoinstallConfig = AutoinstallConfig()
    appliance: ApplianceConfig = ApplianceConfig()
    payload: PayloadConfig = PayloadConfig()
    signing: SigningConfig = SigningConfig()
    # Where the config came from and its bytes' sha256, for messages and the manifest.
    source: Path = field(default=Path("<embedded default>"), metadata={"internal": True})
    sha256: str = field(default="", metadata={"internal": True})

    @property
    def volume_id(self) -> str:
        if self.iso.volume_id is not None:
            return self.iso.volume_id
        return volume_id_for(self.name, self.version)

    @property
    def iso_filename(self) -> str:
        return f"{self.name}-{self.version}.iso"


def volume_id_for(name: str, version: str) -> str:
    """An ISO 9660 volume ID (at most 32 characters) from the appliance name and version."""
    text = re.sub(r"[^A-Za-z0-9 _.-]", "_", f"{name} {version}")
    return text[:32]


def to_mapping(config: BuildConfig) -> Mapping[str, Any]:
    """The config as plain data (enums as values), for templates and the manifest."""

    def plain(value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: plain(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if not f.metadata.get("internal")
            }
        return value

    result: dict[str, Any] = plain(config)
    return result
