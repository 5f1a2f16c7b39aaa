"""The installer's part, done against a directory: read the medium, set identity, run late-commands.

Subiquity reads ``/autoinstall.yaml`` from the medium, installs the system into ``/target``,
applies the identity section, then runs ``late-commands`` with the medium at ``/cdrom``.
The stand-in target was installed by debootstrap instead; everything after that is done the
same way here, from the bytes of the ISO we built (read back with pycdlib).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from isobuild.iso.source import SourceIso
from isobuild.run import run
from tests.fixtures import mounts
from tests.fixtures.curtin import CommandResult, LateCommands

log = logging.getLogger(__name__)

AUTOINSTALL = "/autoinstall.yaml"
PAYLOAD_DIR = "/appliance"


@dataclass(frozen=True, kw_only=True)
class Medium:
    """What the installer sees at /cdrom (the parts it uses) and the parsed autoinstall."""

    cdrom: Path
    autoinstall: dict[str, Any]

    @property
    def late_commands(self) -> list[str | list[str]]:
        commands: list[str | list[str]] = self.autoinstall.get("late-commands") or []
        return commands


def read_medium(iso: Path, cdrom: Path) -> Medium:
    """Copy /autoinstall.yaml and the /appliance tree from ``iso`` into ``cdrom``."""
    mounts.remove_tree(cdrom)
    cdrom.mkdir(parents=True)
    with SourceIso(iso) as source:
        text = source.read_text(AUTOINSTALL)
        (cdrom / AUTOINSTALL.lstrip("/")).write_text(text)
        _copy_tree(source, PAYLOAD_DIR, cdrom)
    document = yaml.safe_load(text)
    section = document.get("autoinstall") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f"{iso}:{AUTOINSTALL}: no 'autoinstall' mapping")
    return Medium(cdrom=cdrom, autoinstall=section)


def iso_build_info(iso: Path) -> dict[str, Any]:
    """``/appliance/build-info.json`` of a built ISO (what the installed system will read)."""
    with SourceIso(iso) as source:
        document: dict[str, Any] = json.loads(source.read_text(f"{PAYLOAD_DIR}/build-info.json"))
    return document


def _copy_tree(source: SourceIso, iso_dir: str, dest_root: Path) -> None:
    for entry in source.list_dir(iso_dir):
        local = dest_root / entry.path.lstrip("/")
        if entry.is_dir:
            local.mkdir(parents=True, exist_ok=True)
            _copy_tree(source, entry.path, dest_root)
        elif not entry.is_symlink:
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(source.read_bytes(entry.path))
            # The medium is read-only and root-owned, as the installer's /cdrom is.
            local.chmod(0o444)


def apply_identity(medium: Medium, target: Path) -> None:
    """Hostname and the first user from ``identity``, as subiquity sets them."""
    identity = medium.autoinstall.get("identity") or {}
    hostname = str(identity.get("hostname", "ubuntu"))
    (target / "etc/hostname").write_text(hostname + "\n")
    hosts = target / "etc/hosts"
    hosts.write_text(hosts.read_text() + f"127.0.1.1\t{hostname}\n")
    username = identity.get("username")
    if username:
        run(
            ["chroot", target, "useradd", "--create-home", "--shell", "/bin/bash", username],
            capture=True,
        )
        # "!" (the default) locks the password; a crypt hash is set as given.
        password = str(identity.get("password", "!"))
        run(
            ["chroot", target, "chpasswd", "--encrypted"],
            input=f"{username}:{password}\n".encode(),
            capture=True,
        )
    keys = (medium.autoinstall.get("ssh") or {}).get("authorized-keys") or []
    if username and keys:
        ssh_dir = target / "home" / username / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text("".join(f"{k}\n" for k in keys))
        owner = f"{username}:{username}"
        run(["chroot", target, "chown", "-R", owner, f"/home/{username}/.ssh"], capture=True)


def run_late_commands(medium: Medium, target: Path) -> list[CommandResult]:
    """Every late-command, ``curtin in-target`` chrooted into ``target`` (stops at a failure)."""
    runner = LateCommands(target, medium.cdrom, mode="auto")
    results = runner.run_all(medium.late_commands)
    for result in results:
        log.info("late-command: %s -> %s", " ".join(result.argv), result.returncode)
    return results
