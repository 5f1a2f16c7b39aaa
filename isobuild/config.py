"""The build config: frozen dataclasses loaded and validated once from YAML."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import enum
import hashlib
import ipaddress
import re
import reprlib
import types
import typing
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import yaml

from host_service import settings as host_settings
from isobuild import ca_bundle
from isobuild.errors import ConfigError
from isobuild.resources import DEFAULT_CONFIG, DEFAULT_LOCK, FLUX_DIR

T = TypeVar("T")
Check = Callable[[Any], str | None]


# --- values in messages --------------------------------------------------------------------


@dataclass(frozen=True)
class _Scalar:
    """A YAML number, boolean or date as loaded, with the text it was written as.

    A string field can then take ``version: 1.0`` as written and refuse ``version: 1.10``
    (YAML reads 1.1) or ``name: 0123`` (YAML 1.1 reads the octal 83) naming what was typed.
    """

    value: Any
    text: str

    def __str__(self) -> str:
        return self.text


_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, _Scalar) else value


def _kind(value: Any) -> str:
    """A value's YAML type for messages (never the value itself)."""
    value = _plain(value)
    return "null" if value is None else type(value).__name__


def _shown(value: Any) -> str:
    """A value for a message: at most ~80 characters, containers by their type only."""
    value = _plain(value)
    if isinstance(value, list | dict | tuple | set):
        return _kind(value)
    return _REPR.repr(value)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- checks --------------------------------------------------------------------------------


def _matches(pattern: str, what: str) -> Check:
    regex = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if regex.fullmatch(str(value)) else f"expected {what}, got {_shown(value)}"

    return check


def _between(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"expected {low}..{high}, got {value}"

    return check


def _check(fn: Check) -> Any:
    return {"check": fn}


def _crypt_hash(value: Any) -> str | None:
    """Never echoes the value: what fails here is most likely the password itself."""
    if re.fullmatch(r"\$(6|y|5|2[aby])\$[^\s:]+", str(value)):
        return None
    return (
        "not a crypt(3) hash such as $6$... (value not shown: it may be a password); put "
        "the hash here, never the password: `mkpasswd -m sha-512` makes one"
    )


# systemd-tmpfiles creates the appliance's directories and sets owner and mode at every boot,
# and the paths go unquoted into tmpfiles.d lines, unit files and /etc/default/appliance.
_PATH_CHARS = re.compile(r"/|(/[A-Za-z0-9._-]+)+")
# None of these, nor a parent of one, may be an appliance directory.
_SYSTEM_DIRS = tuple(
    PurePosixPath(p)
    for p in (
        "/bin", "/boot", "/dev", "/efi", "/etc/default", "/etc/rancher", "/etc/ssh",
        "/etc/sudoers.d", "/etc/systemd/system", "/home", "/lib", "/lib64", "/media", "/mnt",
        "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp",
        "/usr/bin", "/usr/lib/systemd", "/usr/local/bin", "/usr/sbin", "/usr/share",
        "/var/cache", "/var/lib/apt", "/var/lib/dpkg", "/var/lib/rancher", "/var/lib/systemd",
        "/var/log", "/var/spool", "/var/tmp",
    )
)  # fmt: skip
# Nor anything inside these.
_FOREIGN_TREES = {
    PurePosixPath("/proc"): "a kernel file system",
    PurePosixPath("/sys"): "a kernel file system",
    PurePosixPath("/dev"): "a kernel file system",
    PurePosixPath("/run"): "emptied at every boot",
    PurePosixPath("/var/run"): "emptied at every boot",
    PurePosixPath("/tmp"): "cleaned by systemd-tmpfiles",
    PurePosixPath("/var/tmp"): "cleaned by systemd-tmpfiles",
    PurePosixPath("/boot"): "the small boot partition (with layout: lvm)",
    PurePosixPath("/efi"): "the EFI system partition",
    PurePosixPath("/home"): "the users' home directories",
    PurePosixPath("/root"): "root's home directory",
    PurePosixPath("/media"): "where removable media are mounted",
    PurePosixPath("/snap"): "snapd's",
    PurePosixPath("/etc/rancher"): "k3s's own",
    PurePosixPath("/var/lib/rancher"): "k3s's own",
}


def _dir_problem(value: str, example: str) -> str | None:
    """Why ``value`` cannot be one of the appliance's own directories, or None."""
    if not value.startswith("/"):
        return f"expected an absolute path, got {_shown(value)}"
    if not _PATH_CHARS.fullmatch(value):
        return (
            "expected an absolute path of letters, digits, '.', '_' and '-' with single '/' "
            f"between names and none at the end (it is written unquoted into systemd units "
            f"and tmpfiles.d), got {_shown(value)}"
        )
    if {".", ".."} & set(value.split("/")):
        return f"expected an absolute path without '.' or '..', got {_shown(value)}"
    path = PurePosixPath(value)
    own = f"give a directory of the appliance's own, e.g. {example!r}"
    for system in _SYSTEM_DIRS:
        if path == system or path in system.parents:
            return (
                f"{value!r} is a system directory or holds one; systemd-tmpfiles sets the "
                f"owner and mode of this directory at every boot: {own}"
            )
    for tree, why in _FOREIGN_TREES.items():
        if tree in path.parents:
            return f"{value!r} is inside {tree}, {why}: {own}"
    return None


def _appliance_dir(example: str) -> Check:
    def check(value: Any) -> str | None:
        return _dir_problem(str(value), example)

    return check


REALNAME_MAX = 160  # subiquity's REALNAME_MAXLEN


def _realname(value: Any) -> str | None:
    """What useradd can store in the GECOS field (and subiquity's own form accepts)."""
    text = str(value)
    if len(text) > REALNAME_MAX:
        return f"expected at most {REALNAME_MAX} characters, got {len(text)}"
    if any(c in ":,=" or unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        return (
            "expected a name without ':', ',', '=', line breaks or other control characters "
            f"(the GECOS field of /etc/passwd; subiquity refuses them too), got {_shown(text)}"
        )
    return None


SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
)
# sshd(8) AUTHORIZED_KEYS FILE FORMAT: comma-separated options, values in double quotes.
_KEY_OPTION = r'[A-Za-z0-9_-]+(="(?:[^"\\]|\\.)*")?'
_KEY_OPTIONS = re.compile(rf"{_KEY_OPTION}(,{_KEY_OPTION})*[ \t]+")
_KEY_LINE = "`[options ]<type> <base64>[ comment]`, one line of a .pub file"


def _key_type_and_blob(text: str) -> tuple[str, str] | None:
    parts = text.split(None, 2)
    if len(parts) >= 2 and (parts[0] in SSH_KEY_TYPES or parts[0] == "ssh-dss"):
        return parts[0], parts[1]
    options = _KEY_OPTIONS.match(text)
    if options is None:
        return None
    parts = text[options.end() :].split(None, 2)
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def _ssh_string(data: bytes) -> bytes | None:
    """The first RFC 4251 string of a key blob (its key type), or None."""
    if len(data) < 4:
        return None
    size = int.from_bytes(data[:4], "big")
    return data[4 : 4 + size] if 4 + size < len(data) else None


def _authorized_key(value: Any) -> str | None:
    """One authorized_keys line. Never echoes it: a refused value may be a private key."""
    text = str(value).strip()
    if "PRIVATE KEY" in text:
        return (
            "is a private key (value not shown); everything on the ISO is readable by "
            "whoever holds it: give the public key (`ssh-keygen -y -f KEY` prints it)"
        )
    if not text:
        return f"is empty; give a public key: {_KEY_LINE}"
    # A tab may separate the fields; any other control character could start a new line.
    if any(c != "\t" and unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        return "has a line break or control character (value not shown); give one key per item"
    found = _key_type_and_blob(text)
    if found is None or found[0] not in (*SSH_KEY_TYPES, "ssh-dss"):
        return (
            f"not an OpenSSH public key (value not shown); expected {_KEY_LINE}, with a "
            f"type of {', '.join(SSH_KEY_TYPES)}"
        )
    key_type, blob = found
    if key_type == "ssh-dss":
        return (
            "is a DSA (ssh-dss) key, which the OpenSSH of Ubuntu 24.04 refuses; give an "
            "ssh-ed25519 key (`ssh-keygen -t ed25519`)"
        )
    try:
        embedded = _ssh_string(base64.b64decode(blob, validate=True))
    except binascii.Error:
        embedded = None
    if embedded != key_type.encode():
        return (
            f"{key_type} key whose base64 part is not an {key_type} key (value not shown: "
            "cut or mistyped?); copy the whole line from the .pub file"
        )
    return None


def _registry_host(value: Any) -> str | None:
    """A host[:port] the appliance's reference parser and build-info-v1.json accept."""
    text = str(value)
    what = f"expected a registry host[:port] (DNS name or IPv4 address), got {_shown(text)}"
    if text.startswith("["):
        return f"{what}: an IPv6 address is not supported (build-info-v1.json); use a name"
    host, colon, port = text.partition(":")
    if colon and not (re.fullmatch(r"[1-9][0-9]{0,4}", port) and int(port) <= 65535):
        return f"{what}: the port must be 1..65535"
    if re.fullmatch(r"[0-9.]+", host) and re.search(r"[0-9]", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{what}: not an IPv4 address"
        return None
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if len(host) > 253 or not re.fullmatch(rf"{label}(\.{label})*", host):
        return f"{what}: each name between dots is 1-63 of A-Z a-z 0-9 -, no '-' at either end"
    if "." not in host and not colon and host != "localhost":
        return (
            f"{what}: a name without a dot or a port reads as a Docker Hub namespace; give "
            "the full name or a port"
        )
    return None


NAME = _matches(r"[a-z0-9][a-z0-9-]{0,62}", "lowercase letters, digits and '-'")
VERSION = _matches(r"[0-9A-Za-z][0-9A-Za-z.+~-]{0,63}", "a version like 1.2.3")
HOSTNAME = _matches(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "a hostname label")
USERNAME = _matches(r"[a-z_][a-z0-9_-]{0,31}", "a Linux user name")
# The pattern isobuild/schemas/autoinstall.json gives subiquity's locale.
LOCALE = _matches(
    r"[A-Za-z]{1,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@\w+)?", "a locale such as en_US.UTF-8"
)
VOLUME_ID = _matches(r"[A-Za-z0-9 _.\-]{1,32}", "1 to 32 of A-Z a-z 0-9 space _ . -")
REPOSITORY = _matches(r"[a-z0-9]+([._/-][a-z0-9]+)*", "a registry repository path")
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
    realname: str = field(default="Appliance administrator", metadata=_check(_realname))
    # None: the account gets the password field "*" (no password matches it; see
    # autoinstall.yaml.j2 for why not "!"); log in with ssh.authorized_keys. Never a
    # plaintext password.
    password_hash: str | None = field(default=None, metadata={"check": _crypt_hash, "secret": True})


@dataclass(frozen=True, kw_only=True)
class SshConfig:
    install_server: bool = True
    # Never echoed in messages: a refused value may be a private key.
    authorized_keys: tuple[str, ...] = field(
        default=(), metadata={"check": _authorized_key, "secret": True}
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
    # Distinct and not nested in each other (checked across the three).
    opt: str = field(
        default="/opt/alga-appliance", metadata=_check(_appliance_dir("/opt/alga-appliance"))
    )
    etc: str = field(
        default="/etc/alga-appliance", metadata=_check(_appliance_dir("/etc/alga-appliance"))
    )
    state: str = field(
        default="/var/lib/alga-appliance",
        metadata=_check(_appliance_dir("/var/lib/alga-appliance")),
    )


def _fixed_namespace(name: str) -> Check:
    """flux/ (the release bundle) and Flux's install.yaml name this namespace literally."""

    def check(value: Any) -> str | None:
        if value == name:
            return None
        return (
            f"{_shown(value)} is not supported: the release bundle (flux/) and Flux's install.yaml "
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
    host: str = field(default="ghcr.io", metadata=_check(_registry_host))
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


# --- YAML ------------------------------------------------------------------------------------

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class DuplicateKey:
    """A key given twice in one YAML mapping (PyYAML would silently keep the last)."""

    line: int
    first_line: int
    key: str

    @property
    def where(self) -> str:
        return f"line {self.line}"

    @property
    def message(self) -> str:
        first = "twice" if self.first_line == self.line else f"first on line {self.first_line}"
        return (
            f"duplicate key {_shown(self.key)} ({first} in this mapping); YAML keeps only the "
            "last one, so remove or merge the other"
        )


def _duplicate_keys(root: yaml.Node) -> list[DuplicateKey]:
    """Every scalar key written twice in one mapping, in document order.

    Walks the composed nodes before anything is constructed (an alias is one node, seen
    once), so merge keys (``<<``) and aliases stay what YAML says they are.
    """
    found: list[tuple[int, int, DuplicateKey]] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                stack += [key, value]
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                mark = key.start_mark
                ident = (key.tag, key.value)
                if ident in first:
                    duplicate = DuplicateKey(
                        line=mark.line + 1, first_line=first[ident], key=key.value
                    )
                    found.append((mark.line, mark.column, duplicate))
                else:
                    first[ident] = mark.line + 1
    return [duplicate for *_, duplicate in sorted(found, key=lambda f: f[:2])]


def load_yaml(
    text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader
) -> tuple[Any, list[DuplicateKey]]:
    """``yaml.safe_load(text)`` plus the keys given twice (which safe_load drops silently)."""
    reader = loader(text)
    try:
        node = reader.get_single_node()
        if node is None:
            return None, []
        # Before constructing: that flattens merge keys (<<) into the nodes themselves.
        duplicates = _duplicate_keys(node)
        return reader.construct_document(node), duplicates
    finally:
        reader.dispose()


class _ConfigLoader(yaml.SafeLoader):
    """Loads numbers, booleans and dates as :class:`_Scalar` (value plus the text written)."""


def _keeping_text(construct: Callable[[Any, Any], Any]) -> Callable[[Any, Any], _Scalar]:
    def constructor(loader: Any, node: Any) -> _Scalar:
        try:
            value = construct(loader, node)
        except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit str() limit
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {_clip(node.value)!r}: {exc}", node.start_mark
            ) from exc
        return _Scalar(value, node.value)

    return constructor


for _tag, _construct in (
    ("int", yaml.SafeLoader.construct_yaml_int),
    ("float", yaml.SafeLoader.construct_yaml_float),
    ("bool", yaml.SafeLoader.construct_yaml_bool),
    ("timestamp", yaml.SafeLoader.construct_yaml_timestamp),
):
    _ConfigLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _keeping_text(_construct))


def yaml_error(source: Path | str, exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: ``<source>: not valid YAML (line L, column C): why``."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
    return f"{source}: not valid YAML ({where}): {getattr(exc, 'problem', exc)}"


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


def _reading(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {_clip(str(value))}"
    return f"a {type(value).__name__}"


def _to_str(value: Any, path: str, problems: _Problems, *, secret: bool) -> Any:
    """A YAML string as is; a number only where it reads back exactly as it was written."""
    if isinstance(value, str):
        return value
    if isinstance(value, _Scalar) and not secret:
        plain = value.value
        number = isinstance(plain, int | float) and not isinstance(plain, bool)
        if number and str(plain) == value.text:
            return value.text  # `version: 2`, `version: 1.0`: nothing lost
        text = _clip(value.text)
        key = path.rpartition(".")[2]
        problems.add(
            path,
            f"expected a string, got {text} (YAML reads it as {_reading(plain)}); quote it: "
            f'{key}: "{text}"',
        )
        return _INVALID
    # A secret (or a container) is named by its type only.
    problems.add(path, f"expected a string, got {_kind(value)}")
    return _INVALID


def _convert(tp: Any, value: Any, path: str, problems: _Problems, *, secret: bool = False) -> Any:
    """Convert a YAML value to ``tp``; on error record it and return a sentinel."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _convert(inner, value, path, problems, secret=secret)
    if tp is str:
        return _to_str(value, path, problems, secret=secret)
    value = _plain(value)
    if origin is tuple:
        if not isinstance(value, list):
            problems.add(path, f"expected {_type_name(tp)}, got {_kind(value)}")
            return _INVALID
        item_tp = typing.get_args(tp)[0]
        items = [
            _convert(item_tp, v, f"{path}[{i}]", problems, secret=secret)
            for i, v in enumerate(value)
        ]
        return tuple(items)
    if dataclasses.is_dataclass(tp):
        return _load_dataclass(tp, value, path, problems)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            # Only a string can be a member: anything else (a list of aliases...) is refused
            # before Enum's own message could repr it whole.
            if isinstance(value, str):
                return tp(value)
        except ValueError:
            pass
        problems.add(path, f"expected {_type_name(tp)}, got {_shown(value)}")
        return _INVALID
    if tp is bool:
        if not isinstance(value, bool):
            problems.add(path, f"expected true or false, got {_shown(value)}")
            return _INVALID
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(path, f"expected an integer, got {_shown(value)}")
            return _INVALID
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            problems.add(path, f"expected a path, got {_shown(value)}")
            return _INVALID
        return Path(value)
    raise TypeError(f"config field type {tp!r} is not supported")  # a bug in this module


_INVALID = object()


def _key_name(key: Any) -> str:
    return _clip(str(key)) if isinstance(key, str | _Scalar) else _shown(key)


def _repeated(items: tuple[Any, ...]) -> Iterator[Any]:
    seen: list[Any] = []
    for item in items:
        if item is _INVALID:
            continue
        if item in seen:
            yield item
        seen.append(item)


def _load_dataclass(cls: Any, data: Any, path: str, problems: _Problems) -> Any:
    if not isinstance(data, dict):
        problems.add(path, f"expected a mapping, got {_kind(data)}")
        return _INVALID
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = _key_name(key)
        key_path = f"{path}.{name}" if path else name
        if key not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            allowed = ", ".join(sorted(fields))
            problems.add(key_path, f"unknown key{hint}; allowed here: {allowed}")
            continue
        meta = fields[key].metadata
        converted = _convert(hints[key], value, key_path, problems, secret=bool(meta.get("secret")))
        if converted is _INVALID:
            continue
        check = meta.get("check")
        if check is not None and converted is not None:
            values = converted if isinstance(converted, tuple) else (converted,)
            for i, item in enumerate(values):
                if item is _INVALID:
                    continue
                message = check(item)
                if message:
                    where = f"{key_path}[{i}]" if isinstance(converted, tuple) else key_path
                    problems.add(where, message)
        if meta.get("unique") and isinstance(converted, tuple):
            for item in _repeated(converted):
                shown = _shown(item.value if isinstance(item, enum.Enum) else item)
                problems.add(key_path, f"{shown} is listed more than once; list each once")
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
    _distinct_paths(config.appliance.paths, problems)


def _distinct_paths(paths: AppliancePaths, problems: _Problems) -> None:
    """opt, etc and state get different owners and modes: none may hold another."""
    named = [(f.name, str(getattr(paths, f.name))) for f in dataclasses.fields(paths)]
    valid = [(name, PurePosixPath(value)) for name, value in named if not _dir_problem(value, "")]
    for i, (name, path) in enumerate(valid):
        for other_name, other in valid[:i]:
            if path == other:
                relation = "is also"
            elif other in path.parents:
                relation = "is inside"
            elif path in other.parents:
                relation = "holds"
            else:
                continue
            problems.add(
                f"appliance.paths.{name}",
                f"{str(path)!r} {relation} appliance.paths.{other_name} ({str(other)!r}); "
                "each needs a directory of its own (systemd-tmpfiles gives them different "
                "owners and modes)",
            )


KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def values_profiles(flux_dir: Path = FLUX_DIR) -> list[str]:
    """The profiles of the release bundle: ``flux/profiles/<name>/`` with a kustomization."""
    profiles = flux_dir / "profiles"
    if not profiles.is_dir():
        return []
    return sorted(
        child.name
        for child in profiles.iterdir()
        if child.is_dir() and any((child / name).is_file() for name in KUSTOMIZATION_FILES)
    )


def _bundle_checks(config: BuildConfig, flux_dir: Path, problems: _Problems) -> None:
    """The appliance's Flux Kustomization points at ./profiles/<values_profile> of flux/."""
    profile = config.appliance.values_profile
    if K8S_NAME(profile) is not None:
        return  # already reported
    known = values_profiles(flux_dir)
    if profile not in known:
        problems.add(
            "appliance.values_profile",
            f"{profile!r} is not a profile of the release bundle ({flux_dir / 'profiles'} "
            f"has {', '.join(known) or 'none'}); set one of those or add "
            f"profiles/{profile}/ with a kustomization",
        )


def parse_config(
    text: str, *, source: Path, base_dir: Path | None = None, flux_dir: Path = FLUX_DIR
) -> BuildConfig:
    """Parse and validate a build config; every problem is reported at once."""
    problems = _Problems(str(source))
    try:
        data, duplicates = load_yaml(text, _ConfigLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(
            yaml_error(source, exc),
            hint="fix the YAML syntax; `python3 -c 'import yaml,sys; yaml.safe_load(sys.stdin)'`"
            " < FILE shows the same error",
        ) from exc
    for duplicate in duplicates:
        problems.add(duplicate.where, duplicate.message)
    if data is None:
        data = {}
    config = _load_dataclass(BuildConfig, data, "", problems)
    if config is not _INVALID:
        _cross_checks(config, problems)
        _bundle_checks(config, flux_dir, problems)
        config = _with_local_files(config, base_dir, problems)
    if problems.items:
        raise ConfigError(problems.items, hint="see docs/config.md for every key and default")
    digest = hashlib.sha256(text.encode()).hexdigest()
    result: BuildConfig = dataclasses.replace(config, source=source, sha256=digest)
    return result


def _file_problem(path: Path, wanted: str) -> str | None:
    """Why ``path`` is no readable file (with what to give instead), or None."""
    if not path.exists():
        return (
            f"{path}: no such file; give {wanted} (a relative path is relative to the config "
            "file's directory)"
        )
    if path.is_dir():
        return f"{path}: is a directory; give {wanted}"
    if not path.is_file():
        return f"{path}: not a regular file; give {wanted}"
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        return (
            f"{path}: cannot be read ({exc.strerror}); make it readable by the user running "
            "isobuild"
        )
    return None


LOCK_FILE = "the payload lock file (docs/payload.md; `isobuild lock --update` writes one)"
SIGNING_KEY = (
    "an OpenPGP secret key file (`gpg --export-secret-keys --armor FINGERPRINT > key.asc`) "
    "or the 16- or 40-hex-digit fingerprint of a key in gpg-agent"
)


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
        key = _resolve(Path(signing.key), base_dir)
        message = _file_problem(key, SIGNING_KEY)
        if message:
            problems.add("signing.key", message)
        signing = SigningConfig(key=str(key))
    lock = _resolve(config.payload.lock, base_dir)
    if lock != DEFAULT_LOCK:  # the project's own is checked where it is read
        message = _file_problem(lock, LOCK_FILE)
        if message:
            problems.add("payload.lock", message)
    return dataclasses.replace(
        config,
        appliance=dataclasses.replace(config.appliance, registry=registry),
        payload=PayloadConfig(lock=lock),
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
