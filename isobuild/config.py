"""The build config: frozen dataclasses loaded and validated once from YAML."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import hashlib
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import yaml

from host_service import settings as host_settings
from isobuild import ca_bundle
from isobuild.errors import ConfigError
from isobuild.resources import DEFAULT_CONFIG, DEFAULT_LOCK

T = TypeVar("T")
Check = Callable[[Any], str | None]


def _matches(pattern: str, what: str) -> Check:
    regex = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if regex.fullmatch(str(value)) else f"expected {what}, got {value!r}"

    return check


def _between(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"expected {low}..{high}, got {value}"

    return check


def _absolute_posix(value: Any) -> str | None:
    path = PurePosixPath(str(value))
    if not path.is_absolute() or ".." in path.parts:
        return f"expected an absolute path without '..', got {value!r}"
    return None


def _check(fn: Check) -> Any:
    return {"check": fn}


NAME = _matches(r"[a-z0-9][a-z0-9-]{0,62}", "lowercase letters, digits and '-'")
VERSION = _matches(r"[0-9A-Za-z][0-9A-Za-z.+~-]{0,63}", "a version like 1.2.3")
HOSTNAME = _matches(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "a hostname label")
USERNAME = _matches(r"[a-z_][a-z0-9_-]{0,31}", "a Linux user name")
CRYPT_HASH = _matches(r"\$(6|y|5|2[aby])\$[^\s:]+", "a crypt(3) hash such as $6$...")
VOLUME_ID = _matches(r"[A-Za-z0-9 _.\-]{1,32}", "1 to 32 of A-Z a-z 0-9 space _ . -")
REPOSITORY = _matches(r"[a-z0-9]+([._/-][a-z0-9]+)*", "a registry repository path")
REGISTRY_HOST = _matches(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", "a registry host[:port]")
K8S_NAME = _matches(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "a Kubernetes name")
FILE_MODE = _matches(r"0[0-7]{3}", "an octal mode such as '0600'")


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
    timeout: int = field(default=5, metadata=_check(_between(0, 3600)))
    # Index into the installer menu entries of grub.cfg; 0 is "Try or Install".
    default: int = field(default=0, metadata=_check(_between(0, 99)))


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
    realname: str = "Appliance administrator"
    # None: the account gets the password field "*" (no password matches it; see
    # autoinstall.yaml.j2 for why not "!"); log in with ssh.authorized_keys. Never a
    # plaintext password.
    password_hash: str | None = field(default=None, metadata=_check(CRYPT_HASH))


@dataclass(frozen=True, kw_only=True)
class SshConfig:
    install_server: bool = True
    authorized_keys: tuple[str, ...] = ()
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
    interactive_sections: tuple[InteractiveSection, ...] = ()
    locale: str = field(default="en_US.UTF-8", metadata=_check(_matches(r"\S+", "a locale")))
    keyboard_layout: str = field(default="us", metadata=_check(_matches(r"[a-z]{2,8}", "a layout")))
    timezone: str = field(default="Etc/UTC", metadata=_check(_matches(r"[A-Za-z0-9_+/-]+", "a tz")))
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
    opt: str = field(default="/opt/alga-appliance", metadata=_check(_absolute_posix))
    etc: str = field(default="/etc/alga-appliance", metadata=_check(_absolute_posix))
    state: str = field(default="/var/lib/alga-appliance", metadata=_check(_absolute_posix))


def _fixed_namespace(name: str) -> Check:
    """flux/ (the release bundle) and Flux's install.yaml name this namespace literally."""

    def check(value: Any) -> str | None:
        if value == name:
            return None
        return (
            f"{value!r} is not supported: the release bundle (flux/) and Flux's install.yaml "
            f"use {name!r}, so the appliance's objects would land where Flux never looks; "
            f"remove the key or set {name!r}"
        )

    return check


# The appliance's namespace defaults are the host service's (one place for each name).
_SERVICE_NAMESPACES = host_settings.Namespaces()


@dataclass(frozen=True, kw_only=True)
class Namespaces:
    # Fixed for now (docs/config.md): checked so a build never ships a split appliance.
    flux: str = field(
        default=_SERVICE_NAMESPACES.flux,
        metadata=_check(_fixed_namespace(_SERVICE_NAMESPACES.flux)),
    )
    system: str = field(
        default=_SERVICE_NAMESPACES.system,
        metadata=_check(_fixed_namespace(_SERVICE_NAMESPACES.system)),
    )
    workloads: str = field(
        default=_SERVICE_NAMESPACES.workloads,
        metadata=_check(_fixed_namespace(_SERVICE_NAMESPACES.workloads)),
    )


@dataclass(frozen=True, kw_only=True)
class RegistryConfig:
    host: str = field(default="ghcr.io", metadata=_check(REGISTRY_HOST))
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
    port: int = field(default=8080, metadata=_check(_between(1, 65535)))


@dataclass(frozen=True, kw_only=True)
class ApplianceConfig:
    paths: AppliancePaths = AppliancePaths()
    namespaces: Namespaces = Namespaces()
    registry: RegistryConfig = RegistryConfig()
    k3s: K3sConfig = K3sConfig()
    host_service: HostServiceConfig = HostServiceConfig()
    values_profile: str = field(default="single-node", metadata=_check(K8S_NAME))


@dataclass(frozen=True, kw_only=True)
class PayloadConfig:
    # Relative paths are resolved against the config file's directory.
    lock: Path = DEFAULT_LOCK


@dataclass(frozen=True, kw_only=True)
class SigningConfig:
    # A key in gpg-agent (its fingerprint) or an OpenPGP secret key file; relative paths
    # are resolved against the config file's directory. None: SHA256SUMS is not signed.
    key: str | None = field(
        default=None, metadata=_check(_matches(r"\S+", "a fingerprint or path"))
    )


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


# --- loading -----------------------------------------------------------------------------


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        where = f"{self.source}: {path}" if path else self.source
        self.items.append(f"{where}: {message}")


def _type_name(tp: Any) -> str:
    """How a list or enum error names what was expected (the other types word their own)."""
    if typing.get_origin(tp) is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if tp is str:
        return "a string"
    raise TypeError(f"config field type {tp!r} has no name here")  # a bug in this module


def _convert(tp: Any, value: Any, path: str, problems: _Problems) -> Any:
    """Convert a YAML value to ``tp``; on error record it and return a sentinel."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _convert(inner, value, path, problems)
    if origin is tuple:
        if not isinstance(value, list):
            problems.add(path, f"expected {_type_name(tp)}, got {type(value).__name__}")
            return _INVALID
        item_tp = typing.get_args(tp)[0]
        items = [_convert(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items)
    if dataclasses.is_dataclass(tp):
        return _load_dataclass(tp, value, path, problems)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            problems.add(path, f"expected {_type_name(tp)}, got {value!r}")
            return _INVALID
    if tp is bool:
        if not isinstance(value, bool):
            problems.add(path, f"expected true or false, got {value!r}")
            return _INVALID
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(path, f"expected an integer, got {value!r}")
            return _INVALID
        return value
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            problems.add(path, f"expected a string, got {type(value).__name__}")
            return _INVALID
        return str(value)
    if tp is Path:
        if not isinstance(value, str) or not value:
            problems.add(path, f"expected a path, got {value!r}")
            return _INVALID
        return Path(value)
    raise TypeError(f"config field type {tp!r} is not supported")  # a bug in this module


_INVALID = object()


def _load_dataclass(cls: Any, data: Any, path: str, problems: _Problems) -> Any:
    if not isinstance(data, dict):
        problems.add(path, f"expected a mapping, got {type(data).__name__}")
        return _INVALID
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            allowed = ", ".join(sorted(fields))
            problems.add(key_path, f"unknown key{hint}; allowed here: {allowed}")
            continue
        converted = _convert(hints[key], value, key_path, problems)
        if converted is _INVALID:
            continue
        check = fields[key].metadata.get("check")
        if check is not None and converted is not None:
            values = converted if isinstance(converted, tuple) else (converted,)
            for item in values:
                message = check(item)
                if message:
                    problems.add(key_path, message)
        kwargs[key] = converted
    for name, f in fields.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if no_default and name not in data:
            problems.add(f"{path}.{name}" if path else name, "required value is missing")
    try:
        return cls(**kwargs)
    except TypeError:
        return _INVALID  # missing required values, already reported


def _cross_checks(config: BuildConfig, problems: _Problems) -> None:
    ai = config.autoinstall
    if ai.apt_mode is AptMode.OFFLINE:
        if ai.apt_fallback is not AptFallback.OFFLINE_INSTALL:
            problems.add(
                "autoinstall.apt_fallback",
                f"{ai.apt_fallback.value!r} applies only with apt_mode: online (an offline "
                "install never asks a mirror); remove it or set apt_mode: online",
            )
        if ai.updates is not Updates.SECURITY:
            problems.add(
                "autoinstall.updates",
                f"{ai.updates.value!r} needs apt_mode: online (an offline install downloads "
                "no updates); remove it or set apt_mode: online",
            )
    if ai.storage.layout is not StorageLayout.LVM and ai.storage.sizing_policy is not (
        SizingPolicy.ALL
    ):
        problems.add(
            "autoinstall.storage.sizing_policy",
            "applies only to layout: lvm (the direct layout always uses the whole disk)",
        )
    identity = config.autoinstall.identity
    if config.autoinstall.ssh.allow_pw and identity.password_hash is None:
        problems.add(
            "autoinstall.ssh.allow_pw",
            "password login over SSH is enabled but autoinstall.identity.password_hash is "
            "not set; set a hash or turn allow_pw off",
        )


def yaml_error(source: Path | str, exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: ``<source>: not valid YAML (line L, column C): why``."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
    return f"{source}: not valid YAML ({where}): {getattr(exc, 'problem', exc)}"


def parse_config(text: str, *, source: Path, base_dir: Path | None = None) -> BuildConfig:
    """Parse and validate a build config; every problem is reported at once."""
    problems = _Problems(str(source))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            yaml_error(source, exc),
            hint="fix the YAML syntax; `python3 -c 'import yaml,sys; yaml.safe_load(sys.stdin)'`"
            " < FILE shows the same error",
        ) from exc
    if data is None:
        data = {}
    config = _load_dataclass(BuildConfig, data, "", problems)
    if config is not _INVALID:
        _cross_checks(config, problems)
        config = _with_local_files(config, base_dir, problems)
    if problems.items:
        raise ConfigError(problems.items, hint="see docs/config.md for every key and default")
    digest = hashlib.sha256(text.encode()).hexdigest()
    result: BuildConfig = dataclasses.replace(config, source=source, sha256=digest)
    return result


def _with_local_files(
    config: BuildConfig, base_dir: Path | None, problems: _Problems
) -> BuildConfig:
    """Local paths resolved against the config's directory; the CA bundle checked."""
    registry = config.appliance.registry
    if registry.ca_bundle is not None:
        ca = _resolve(registry.ca_bundle, base_dir)
        message = ca_bundle.problem(ca)
        if message:
            problems.add("appliance.registry.ca_bundle", message)
        registry = dataclasses.replace(registry, ca_bundle=ca)
    signing = config.signing
    if signing.key is not None and not _looks_like_fingerprint(signing.key):
        signing = SigningConfig(key=str(_resolve(Path(signing.key), base_dir)))
    return dataclasses.replace(
        config,
        appliance=dataclasses.replace(config.appliance, registry=registry),
        payload=PayloadConfig(lock=_resolve(config.payload.lock, base_dir)),
        signing=signing,
    )


def _looks_like_fingerprint(text: str) -> bool:
    return re.fullmatch(r"(0x)?[0-9A-Fa-f]{16}([0-9A-Fa-f]{24})?", text) is not None


def _resolve(path: Path, base_dir: Path | None) -> Path:
    """A path from the config: relative ones are relative to the config file's directory."""
    if path.is_absolute() or base_dir is None:
        return path
    return (base_dir / path).resolve()


def load_config(path: Path | None) -> BuildConfig:
    """Load ``path``, or the embedded default appliance config when ``path`` is None."""
    if path is None:
        path = DEFAULT_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, expected a YAML file") from exc
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: config file not found", hint="pass --config with an existing file"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    return parse_config(text, source=path, base_dir=path.resolve().parent)


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
