"""The stand-in target: our ISO's late-commands installed onto a debootstrapped Debian disk.

Steps, in the order the real installer takes them: read ``autoinstall.yaml`` and
``/appliance`` from the ISO we built (pycdlib), lay down the base system (here: a copy of the
cached debootstrap tree instead of subiquity's image), apply the identity, run the
late-commands with the ``curtin in-target`` stand-in and the ISO tree as ``/cdrom``, then
turn the tree into a raw ext4 disk and boot it with the Debian kernel.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from isobuild.boot.qemu import Accel, GuestSpec, MediaKind, Medium
from isobuild.config import BuildConfig, load_config
from isobuild.resources import DEFAULT_CONFIG
from tests.fixtures import mounts
from tests.system import installer, rootfs
from tests.system.machine import Machine
from tests.system.ssh_keys import HostKey, KeyPair

log = logging.getLogger(__name__)

KERNEL_ARGS = "root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 panic=-1"
SITE_CA = "site-ca.pem"  # beside the suite's build config, named relative to it


@dataclass(frozen=True, kw_only=True)
class StandinDisk:
    """A disk with the appliance installed, and how it got there (timings in seconds)."""

    disk: Path
    kernel: Path
    initrd: Path
    host_key: HostKey
    timings: dict[str, float]


def suite_config(workdir: Path, *, registry_host: str, site_ca: Path) -> BuildConfig:
    """The default appliance config, with the release registry the tests serve and its CA.

    The CA goes onto the ISO as ``appliance.registry.ca_bundle``, as a site with a private
    registry builds it; the guest's system trust store never sees it.
    """
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["appliance"]["registry"]["host"] = registry_host
    shutil.copyfile(site_ca, workdir / SITE_CA)
    data["appliance"]["registry"]["ca_bundle"] = SITE_CA
    path = workdir / "appliance.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def install(
    *,
    iso: Path,
    base: rootfs.BaseRootfs,
    workdir: Path,
    login_key: KeyPair,
) -> StandinDisk:
    """Install the appliance from ``iso`` onto a copy of ``base``; the tree is removed after."""
    timings: dict[str, float] = {}

    def lap(name: str, started: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - started, 1)
        return now

    started = time.monotonic()
    medium = installer.read_medium(iso, workdir / "cdrom")
    started = lap("read_medium", started)
    target = workdir / "target"
    mounts.remove_tree(target)
    rootfs.copy_tree(base, target)
    started = lap("copy_rootfs", started)
    installer.apply_identity(medium, target)
    installer.run_late_commands(medium, target)
    started = lap("late_commands", started)
    host_key = HostKey.generate()
    rootfs.prepare_for_boot(
        target, authorized_key=login_key.public, host_key=host_key, machine_id=uuid.uuid4().hex
    )
    disk = workdir / "disk.raw"
    rootfs.make_disk(target, disk, extra_bytes=24 * 1024**3)
    lap("make_disk", started)
    mounts.remove_tree(target)
    mounts.remove_tree(medium.cdrom)
    return StandinDisk(
        disk=disk, kernel=base.kernel, initrd=base.initrd, host_key=host_key, timings=timings
    )


def machine(
    installed: StandinDisk,
    *,
    workdir: Path,
    login_key: KeyPair,
    http_port: int,
    accel: Accel,
    memory_mb: int,
    cpus: int,
    boot_timeout: float,
) -> Machine:
    spec = GuestSpec(
        # -kernel boots take bootindex 0 themselves: the disk is not a boot device here.
        media=(Medium(path=installed.disk, kind=MediaKind.DISK, readonly=False, boot=False),),
        kernel=installed.kernel,
        initrd=installed.initrd,
        append=KERNEL_ARGS,
        serial_log=workdir / "console.log",
        memory_mb=memory_mb,
        cpus=cpus,
        accel=accel,
    )
    return Machine(
        spec,
        workdir=workdir,
        key=login_key,
        host_key=installed.host_key.public,
        http_port=http_port,
        boot_timeout=boot_timeout,
    )
