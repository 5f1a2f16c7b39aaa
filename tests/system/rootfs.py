"""The installed-system stand-in: a cached debootstrapped Debian rootfs and disks made from it."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from isobuild.run import run
from tests.fixtures import mounts
from tests.system.ssh_keys import HostKey

# Bump when the steps in _configure() change: it is part of the cache key.
SCRIPT_VERSION = "6"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# What the host service (python3 + jinja2/yaml/requests), systemd, networking and testinfra's
# paramiko backend (sshd, ss, stat, getent) need on the stand-in for Ubuntu 24.04.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "iproute2",
    "iputils-ping",
    "procps",
    "netbase",
    "ca-certificates",
    "openssh-server",
    "python3",
    "python3-jinja2",
    "python3-yaml",
    "python3-requests",
    "linux-image-amd64",
    "zstd",
)

# The guest's network as QEMU's user-mode stack (slirp) presents it.
GUEST_DNS = "10.0.2.3"

_NETWORK_UNIT = """\
[Match]
Name=eth0

[Network]
DHCP=ipv4
"""

_INITRD_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "ext4")

# Timers and generators that only add noise (and CPU under TCG) to a test boot.
_MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "man-db.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",  # 20 s of scanning for LVM snapshots at every TCG boot
    "fstrim.timer",
)


@dataclass(frozen=True, kw_only=True)
class RootfsSpec:
    """Everything the cached base rootfs depends on."""

    suite: str = SUITE
    mirror: str = DEFAULT_MIRROR
    packages: tuple[str, ...] = PACKAGES
    script_version: str = SCRIPT_VERSION

    @classmethod
    def from_environment(cls) -> RootfsSpec:
        return cls(mirror=os.environ.get("ISOBUILD_DEBIAN_MIRROR", DEFAULT_MIRROR))

    def key(self) -> str:
        data = json.dumps(
            {
                "suite": self.suite,
                "mirror": self.mirror,
                "packages": sorted(self.packages),
                "script": self.script_version,
            },
            sort_keys=True,
        )
        return hashlib.sha256(data.encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class BaseRootfs:
    """A finished, cached rootfs tree and the kernel and initrd booted with it."""

    tree: Path
    kernel: Path
    initrd: Path
    build_seconds: float | None  # None when it came from the cache


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Several pytest sessions (developers, CI shards) may share one cache.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_base_rootfs(cache: Path, spec: RootfsSpec) -> BaseRootfs:
    """The base rootfs for ``spec`` from ``cache``, built with debootstrap if missing."""
    root = cache / "system-rootfs"
    dest = root / spec.key()
    with _locked(root / f"{spec.key()}.lock"):
        built: float | None = None
        if (dest / "complete.json").is_file():
            # A mount in the cache (someone chrooted into it) would be copied into every disk.
            mounts.refuse_mounts(dest, "use it as the cached rootfs")
        else:
            started = time.monotonic()
            _build(dest, spec)
            built = time.monotonic() - started
            _prune(root, keep=spec.key())
        return BaseRootfs(
            tree=dest / "tree",
            kernel=dest / "vmlinuz",
            initrd=dest / "initrd.img",
            build_seconds=built,
        )


def _prune(root: Path, *, keep: str) -> None:
    """Remove rootfs trees of older specs that no session is using right now."""
    for lock in root.glob("*.lock"):
        key = lock.name.removesuffix(".lock")
        if key == keep:
            continue
        with lock.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            for stale in (root / key, root / f"{key}.partial"):
                mounts.remove_tree(stale)
        lock.unlink(missing_ok=True)


def _build(dest: Path, spec: RootfsSpec) -> None:
    work = dest.with_name(dest.name + ".partial")
    if work.exists():
        # Ours, from a build that died (the lock is held): what it left mounted goes first.
        mounts.unmount_all(work)
        mounts.remove_tree(work)
    mounts.remove_tree(dest)
    tree = work / "tree"
    tree.mkdir(parents=True)
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--components=main",
                "--include=" + ",".join(spec.packages),
                spec.suite,
                tree,
                spec.mirror,
            ],
            capture=True,
            timeout=1800,
        )
        _configure(tree)
    finally:
        # debootstrap ignores a failed unmount of the /proc it mounted (`umount || true`).
        mounts.unmount_all(work)
    kernel, initrd = _boot_files(tree)
    shutil.copy2(kernel, work / "vmlinuz")
    shutil.copy2(initrd, work / "initrd.img")
    record = {
        "suite": spec.suite,
        "mirror": spec.mirror,
        "packages": list(spec.packages),
        "script_version": spec.script_version,
        "kernel": kernel.name,
    }
    seal(work, dest, record)


def seal(work: Path, dest: Path, record: Mapping[str, object]) -> None:
    """Mark the built tree in ``work`` complete and move it to ``dest``: only with nothing
    mounted under it (unmounted here, deepest first; a mount that stays fails the build)."""
    mounts.unmount_all(work)
    (work / "complete.json").write_text(json.dumps(record, indent=2) + "\n")
    work.rename(dest)


def _configure(tree: Path) -> None:
    """What a fresh Ubuntu server install has and debootstrap does not: network, fstab, ssh."""
    (tree / "etc/fstab").write_text("/dev/vda / ext4 defaults,errors=remount-ro 0 1\n")
    network = tree / "etc/systemd/network/20-eth0.network"
    network.parent.mkdir(parents=True, exist_ok=True)
    network.write_text(_NETWORK_UNIT)
    resolv = tree / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text(f"nameserver {GUEST_DNS}\n")
    (tree / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")
    run(["chroot", tree, "systemctl", "enable", "systemd-networkd"], capture=True)
    run(["chroot", tree, "systemctl", "mask", *_MASKED_UNITS], capture=True)
    # Host keys are made per disk (see make_disk), not shared through the cache.
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    run(["chroot", tree, "passwd", "--lock", "root"], capture=True)
    # Debian's default initrd carries every module (30 MB); unpacking it under TCG costs
    # seconds on every boot. The stand-in only ever sees QEMU's virtio devices.
    (tree / "etc/initramfs-tools/conf.d/standin.conf").write_text("MODULES=list\n")
    with (tree / "etc/initramfs-tools/modules").open("a") as modules:
        modules.write("".join(f"{m}\n" for m in _INITRD_MODULES))
    run(["chroot", tree, "update-initramfs", "-u", "-k", "all"], capture=True, timeout=600)
    # A persistent journal: the evidence of the boot before a reboot survives it.
    (tree / "var/log/journal").mkdir(parents=True, exist_ok=True)
    # An empty machine-id would make systemd treat every boot as a first boot.
    (tree / "etc/machine-id").write_text("")
    mounts.remove_tree(tree / "var/cache/apt/archives")
    (tree / "var/cache/apt/archives/partial").mkdir(parents=True)
    for cached in (tree / "var/lib/apt/lists").glob("*_Packages"):
        cached.unlink()


def _boot_files(tree: Path) -> tuple[Path, Path]:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise RuntimeError(f"{tree}/boot: debootstrap installed no kernel")
    kernel = kernels[-1]
    initrd = tree / "boot" / ("initrd.img-" + kernel.name.removeprefix("vmlinuz-"))
    if not initrd.is_file():
        raise RuntimeError(f"{initrd}: no initrd next to {kernel.name}")
    return kernel, initrd


def copy_tree(base: BaseRootfs, target: Path) -> None:
    """A private, writable copy of the cached tree (owners, modes, links, xattrs kept)."""
    mounts.copy_tree(base.tree, target)


def prepare_for_boot(
    tree: Path, *, authorized_key: str, host_key: HostKey, machine_id: str
) -> None:
    """Per-session identity: root's SSH key, the SSH host key, a machine id."""
    ssh_dir = tree / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chown(ssh_dir, 0, 0)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(authorized_key.strip() + "\n")
    keys.chmod(0o600)
    os.chown(keys, 0, 0)
    for old in (tree / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    private = tree / "etc/ssh/ssh_host_ed25519_key"
    private.touch(mode=0o600)
    private.write_bytes(host_key.private_openssh)
    (tree / "etc/ssh/ssh_host_ed25519_key.pub").write_text(host_key.public + "\n")
    (tree / "etc/machine-id").write_text(machine_id + "\n")


def make_disk(tree: Path, disk: Path, *, extra_bytes: int = 2 * 1024**3) -> int:
    """Write ``tree`` into a new sparse raw ext4 image at ``disk`` (no mounts); return its size."""
    mounts.refuse_mounts(tree, f"write it into {disk}")  # mkfs.ext4 -d descends into mounts
    used = _tree_bytes(tree)
    size = ((used + extra_bytes) // (1024**2) + 1) * 1024**2
    disk.unlink(missing_ok=True)
    with disk.open("wb") as handle:
        handle.truncate(size)
    run(
        ["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", tree, disk],
        capture=True,
        timeout=600,
    )
    return size


def _tree_bytes(tree: Path) -> int:
    total = 0
    for path in mounts.walk_files(tree):
        with contextlib.suppress(OSError):
            total += path.lstat().st_size
    return total
