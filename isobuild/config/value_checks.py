"""Checks of single config values: each takes a value and says what is wrong with it, or None."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from isobuild.config.message_values import shown

Check = Callable[[Any], str | None]


def matches(pattern: str, what: str) -> Check:
    regex = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if regex.fullmatch(str(value)) else f"expected {what}, got {shown(value)}"

    return check


def between(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"expected {low}..{high}, got {value}"

    return check


def crypt_hash(value: Any) -> str | None:
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


def dir_problem(value: str, example: str) -> str | None:
    """Why ``value`` cannot be one of the appliance's own directories, or None."""
    if not value.startswith("/"):
        return f"expected an absolute path, got {shown(value)}"
    if not _PATH_CHARS.fullmatch(value):
        return (
            "expected an absolute path of letters, digits, '.', '_' and '-' with single '/' "
            f"between names and none at the end (it is written unquoted into systemd units "
            f"and tmpfiles.d), got {shown(value)}"
        )
    if {".", ".."} & set(value.split("/")):
        return f"expected an absolute path without '.' or '..', got {shown(value)}"
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


def appliance_dir(example: str) -> Check:
    def check(value: Any) -> str | None:
        return dir_problem(str(value), example)

    return check


REALNAME_MAX = 160  # subiquity's REALNAME_MAXLEN


def gecos_text(value: Any) -> str | None:
    """What useradd can store in the GECOS field (and subiquity's own form accepts)."""
    text = str(value)
    if len(text) > REALNAME_MAX:
        return f"expected at most {REALNAME_MAX} characters, got {len(text)}"
    if any(c in ":,=" or unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        return (
            "expected a name without ':', ',', '=', line breaks or other control characters "
            f"(the GECOS field of /etc/passwd; subiquity refuses them too), got {shown(text)}"
        )
    return None


def registry_host(value: Any) -> str | None:
    """A host[:port] the appliance's reference parser and build-info-v1.json accept."""
    text = str(value)
    what = f"expected a registry host[:port] (DNS name or IPv4 address), got {shown(text)}"
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


NAME = matches(r"[a-z0-9][a-z0-9-]{0,62}", "lowercase letters, digits and '-'")
VERSION = matches(r"[0-9A-Za-z][0-9A-Za-z.+~-]{0,63}", "a version like 1.2.3")
HOSTNAME = matches(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "a hostname label")
_USERNAME = matches(r"[a-z_][a-z0-9_-]{0,31}", "a Linux user name")
# Accounts an Ubuntu 24.04 server has before its administrator is made: Debian's base-passwd
# (the static ids of policy 9.2.2) and the service users of the server seed. The installer
# cannot make the administrator under one of these names.
SYSTEM_ACCOUNTS = frozenset(
    {
        "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news",
        "uucp", "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "_apt",
        "messagebus", "syslog", "sshd", "polkitd", "uuidd", "tcpdump", "tss", "landscape",
        "fwupd-refresh", "usbmux", "dnsmasq", "pollinate", "lxd", "dhcpcd",
        # groups of the same systems, which useradd would have to join as the user's own
        "adm", "tty", "disk", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape",
        "sudo", "audio", "dip", "operator", "src", "shadow", "utmp", "video", "sasl",
        "plugdev", "staff", "users", "nogroup",
    }
)  # fmt: skip


def _user_name(value: Any) -> str | None:
    """A Linux user name the installer can make: not one the system has already."""
    problem = _USERNAME(value)
    if problem is None and (str(value) in SYSTEM_ACCOUNTS or str(value).startswith("systemd-")):
        return (
            f"{str(value)!r} is a system account or group of Ubuntu; the installer cannot make "
            "the administrator under it: choose another name"
        )
    return problem


USERNAME: Check = _user_name


# The pattern isobuild/schemas/autoinstall.json gives subiquity's locale.
LOCALE = matches(
    r"[A-Za-z]{1,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@\w+)?", "a locale such as en_US.UTF-8"
)
VOLUME_ID = matches(r"[A-Za-z0-9 _.\-]{1,32}", "1 to 32 of A-Z a-z 0-9 space _ . -")
REPOSITORY = matches(r"[a-z0-9]+([._/-][a-z0-9]+)*", "a registry repository path")
K8S_NAME = matches(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "a Kubernetes name")
FILE_MODE = matches(r"0[0-7]{3}", "an octal mode such as '0600'")


def fixed_namespace(name: str) -> Check:
    """flux/ (the release bundle) and Flux's install.yaml name this namespace literally."""

    def check(value: Any) -> str | None:
        if value == name:
            return None
        return (
            f"{shown(value)} is not supported: the release bundle (flux/) and Flux's install.yaml "
            f"use {name!r}, so the appliance's objects would land where Flux never looks; "
            f"remove the key or set {name!r}"
        )

    return check
