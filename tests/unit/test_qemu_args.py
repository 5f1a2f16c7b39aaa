"""QEMU command lines: golden argument lists for every firmware, medium and option."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.boot.qemu import (
    OVMF_CODE,
    OVMF_MS_VARS,
    OVMF_SECBOOT_CODE,
    Accel,
    Firmware,
    Forward,
    GuestSpec,
    MediaKind,
    Medium,
    OvmfFiles,
    kvm_probe_argv,
    ovmf_copy,
    qemu_argv,
)
from tests.conftest import unavailable

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


def test_a_comma_in_a_path_is_doubled_where_qemu_parses_options() -> None:
    # `file=a,b.iso` opened "a": every cell of a boot-test of such a path failed.
    cell = Path("/tmp/logs,run 1/cell")
    spec = GuestSpec(
        firmware=Firmware.UEFI, serial_log=cell / "serial.log",
        media=(Medium(path=Path("/srv/alga,1.4.0.iso"), kind=MediaKind.USB),),
        ovmf=OvmfFiles(code=Path("/usr/share/OVMF/OVMF_CODE_4M.fd"), vars=cell / "VARS.fd"),
    )  # fmt: skip
    argv = qemu_argv(spec)
    assert "if=pflash,format=raw,unit=1,file=/tmp/logs,,run 1/cell/VARS.fd" in argv
    assert "if=none,id=drive0,file=/srv/alga,,1.4.0.iso,format=raw,snapshot=on" in argv
    # The chardev's legacy `file:` form takes the rest verbatim: no doubling there.
    assert "file:/tmp/logs,run 1/cell/serial.log" in argv
    probe = kvm_probe_argv(cell / "serial.log", OvmfFiles(code=OVMF.code, vars=cell / "V.fd"))
    assert "if=pflash,format=raw,unit=1,file=/tmp/logs,,run 1/cell/V.fd" in probe


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


SB_OVMF = OvmfFiles(
    code=Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"), vars=Path("/tmp/cell/VARS.fd")
)


@pytest.mark.parametrize(
    ("kind", "drive"),
    [
        (MediaKind.CDROM, [
            "-drive", "if=none,id=drive0,file=/tmp/out.iso,format=raw,media=cdrom,readonly=on",
            "-device", "ide-cd,drive=drive0,bus=ide.0,bootindex=0",
        ]),
        (MediaKind.USB, [
            "-device", "qemu-xhci,id=xhci",
            "-drive", "if=none,id=drive0,file=/tmp/out.iso,format=raw,snapshot=on",
            "-device", "usb-storage,bus=xhci.0,drive=drive0,removable=on,bootindex=0",
        ]),
    ],
)  # fmt: skip
def test_secure_boot_uses_q35_with_smm_and_secure_flash(kind: MediaKind, drive: list[str]) -> None:
    spec = GuestSpec(
        firmware=Firmware.UEFI, media=(Medium(path=ISO, kind=kind),), serial_log=LOG,
        ovmf=SB_OVMF, secure_boot=True,
    )  # fmt: skip
    assert qemu_argv(spec) == [
        "qemu-system-x86_64", "-machine", "q35,smm=on", "-accel", "tcg", "-cpu", "max",
        "-m", "1024", "-smp", "1", "-display", "none", "-monitor", "none",
        "-serial", "file:/tmp/cell/serial.log", "-no-reboot",
        "-global", "driver=cfi.pflash01,property=secure,value=on",
        "-drive",
        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
        "-drive", "if=pflash,format=raw,unit=1,file=/tmp/cell/VARS.fd",
        *drive,
        "-nic", "none",
    ]  # fmt: skip


def test_secure_boot_without_uefi_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="Secure Boot needs UEFI"):
        qemu_argv(GuestSpec(serial_log=LOG, secure_boot=True))


def test_ovmf_copy_for_secure_boot_takes_the_smm_code_and_microsoft_keys(tmp_path: Path) -> None:
    if not OVMF_MS_VARS.is_file():
        unavailable(f"{OVMF_MS_VARS}: not found (apt-get install ovmf)")
    files = ovmf_copy(tmp_path, secure_boot=True)
    assert files.code == OVMF_SECBOOT_CODE
    assert files.vars == tmp_path / "OVMF_VARS.fd"
    assert files.vars.read_bytes() == OVMF_MS_VARS.read_bytes()
    plain = ovmf_copy(tmp_path / "plain")
    assert plain.code == OVMF_CODE


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
