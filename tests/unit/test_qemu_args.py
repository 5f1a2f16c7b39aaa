"""QEMU command lines: golden argument lists for every firmware, medium and option."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.boot.qemu import (
    Accel,
    Firmware,
    Forward,
    GuestSpec,
    MediaKind,
    Medium,
    OvmfFiles,
    kvm_probe_argv,
    qemu_argv,
)

LOG = Path("/tmp/cell/serial.log")
ISO = Path("/tmp/out.iso")
OVMF = OvmfFiles(code=Path("/usr/share/OVMF/OVMF_CODE_4M.fd"), vars=Path("/tmp/cell/VARS.fd"))
BASE = [
    "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "max", "-m", "1024",
    "-smp", "1", "-display", "none", "-monitor", "none", "-serial", "file:/tmp/cell/serial.log",
    "-no-reboot",
]  # fmt: skip


def test_bios_cdrom() -> None:
    spec = GuestSpec(media=(Medium(path=ISO, kind=MediaKind.CDROM),), serial_log=LOG)
    assert qemu_argv(spec) == [
        *BASE,
        "-drive", "if=none,id=drive0,file=/tmp/out.iso,format=raw,media=cdrom,readonly=on",
        "-device", "ide-cd,drive=drive0,bus=ide.0,bootindex=0",
        "-nic", "none",
    ]  # fmt: skip


def test_uefi_usb_stick_uses_pflash_with_private_vars_and_xhci() -> None:
    spec = GuestSpec(
        firmware=Firmware.UEFI, media=(Medium(path=ISO, kind=MediaKind.USB),), serial_log=LOG,
        ovmf=OVMF,
    )  # fmt: skip
    assert qemu_argv(spec) == [
        *BASE,
        "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
        "-drive", "if=pflash,format=raw,unit=1,file=/tmp/cell/VARS.fd",
        "-device", "qemu-xhci,id=xhci",
        "-drive", "if=none,id=drive0,file=/tmp/out.iso,format=raw,snapshot=on",
        "-device", "usb-storage,bus=xhci.0,drive=drive0,removable=on,bootindex=0",
        "-nic", "none",
    ]  # fmt: skip


def test_uefi_without_ovmf_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="OVMF"):
        qemu_argv(GuestSpec(firmware=Firmware.UEFI, serial_log=LOG))


def test_kernel_boot_with_writable_virtio_disk_kvm_and_port_forwards() -> None:
    spec = GuestSpec(
        media=(Medium(path=Path("/c/root.img"), kind=MediaKind.DISK, readonly=False, boot=False),),
        kernel=Path("/c/vmlinuz"),
        initrd=Path("/c/initrd.img"),
        append="root=/dev/vda console=ttyS0 net.ifnames=0",
        serial_log=LOG,
        memory_mb=2048,
        cpus=2,
        accel=Accel.KVM,
        network=True,
        forwards=(
            Forward(host_port=40022, guest_port=22),
            Forward(host_port=48080, guest_port=8080),
        ),
    )
    argv = qemu_argv(spec)
    assert argv[:12] == [
        "qemu-system-x86_64", "-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "2048",
        "-smp", "2", "-display",
    ]  # fmt: skip
    assert argv[18:] == [
        "-drive", "if=none,id=drive0,file=/c/root.img,format=raw",
        "-device", "virtio-blk-pci,drive=drive0",
        "-kernel", "/c/vmlinuz",
        "-initrd", "/c/initrd.img",
        "-append", "root=/dev/vda console=ttyS0 net.ifnames=0",
        "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:48080-:8080",
        "-device", "virtio-net-pci,netdev=net0",
    ]  # fmt: skip


def test_read_only_disk_is_protected_by_a_snapshot_and_extra_args_come_last() -> None:
    spec = GuestSpec(media=(Medium(path=ISO, kind=MediaKind.DISK),), serial_log=LOG, extra=("-S",))
    argv = qemu_argv(spec)
    assert "if=none,id=drive0,file=/tmp/out.iso,format=raw,snapshot=on" in argv
    assert argv[-1] == "-S"


def test_kvm_probe_boots_ovmf_without_media_under_kvm() -> None:
    argv = kvm_probe_argv(Path("/tmp/probe.log"), OVMF)
    assert argv[1:5] == ["-accel", "kvm", "-cpu", "host"]
    assert "file:/tmp/probe.log" in argv
    assert "if=pflash,format=raw,unit=1,file=/tmp/cell/VARS.fd" in argv
    assert "-kernel" not in argv
    assert not any(a.startswith(("if=none", "if=virtio")) for a in argv)
