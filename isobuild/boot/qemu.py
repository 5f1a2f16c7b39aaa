"""QEMU guests: pure argument-list builders, an accelerator probe and a small guest runner."""

from __future__ import annotations

import codecs
import contextlib
import enum
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from isobuild.errors import BootError, EnvironmentProblem
from isobuild.run import find_program, spawn

log = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
OVMF_DIR = Path("/usr/share/OVMF")
OVMF_CODE = OVMF_DIR / "OVMF_CODE_4M.fd"
OVMF_VARS = OVMF_DIR / "OVMF_VARS_4M.fd"
# Secure Boot: the SMM build of OVMF (its variable store is only writable from SMM, so the
# guest OS cannot switch Secure Boot off) and a store with Microsoft's keys enrolled and
# Secure Boot on, as shipped PCs have.
OVMF_SECBOOT_CODE = OVMF_DIR / "OVMF_CODE_4M.secboot.fd"
OVMF_MS_VARS = OVMF_DIR / "OVMF_VARS_4M.ms.fd"
POLL_SECONDS = 0.25
STOP_GRACE_SECONDS = 5.0


class Firmware(enum.StrEnum):
    BIOS = "bios"
    UEFI = "uefi"


class MediaKind(enum.StrEnum):
    CDROM = "cdrom"  # an optical drive (El Torito)
    USB = "usb"  # a USB mass-storage stick on an xHCI controller
    DISK = "disk"  # a virtio block device (a stick seen as a plain disk, or a root disk)


class Accel(enum.StrEnum):
    TCG = "tcg"
    KVM = "kvm"


@dataclass(frozen=True, kw_only=True)
class Medium:
    """A file the guest sees as a drive; read-only media are protected by a snapshot."""

    path: Path
    kind: MediaKind
    readonly: bool = True
    format: str = "raw"
    boot: bool = True


@dataclass(frozen=True, kw_only=True)
class Forward:
    """A user-networking port forward from 127.0.0.1:host_port to the guest."""

    host_port: int
    guest_port: int
    protocol: str = "tcp"


@dataclass(frozen=True, kw_only=True)
class OvmfFiles:
    """OVMF's code (read-only) and a private, writable copy of its variable store."""

    code: Path
    vars: Path


@dataclass(frozen=True, kw_only=True)
class GuestSpec:
    """Everything that decides a guest's QEMU command line."""

    firmware: Firmware = Firmware.BIOS
    media: tuple[Medium, ...] = ()
    kernel: Path | None = None
    initrd: Path | None = None
    append: str | None = None
    serial_log: Path
    memory_mb: int = 1024
    cpus: int = 1
    accel: Accel = Accel.TCG
    network: bool = False
    forwards: tuple[Forward, ...] = ()
    ovmf: OvmfFiles | None = None
    # Secure Boot enforced: q35 with SMM and the flash marked secure (pass the Secure Boot
    # OVMF files as ``ovmf``: see ovmf_copy(secure_boot=True)).
    secure_boot: bool = False
    extra: tuple[str, ...] = field(default=())


def option_path(path: Path) -> str:
    """``path`` as the value of a QEMU ``-drive`` option: a comma there ends the value
    (``file=a,b.iso`` opens ``a``), so QEMU wants each one doubled."""
    return os.fspath(path).replace(",", ",,")


def _drive_args(index: int, medium: Medium) -> list[str]:
    drive_id = f"drive{index}"
    path = option_path(medium.path)
    # A read-only disk or stick still gets writes from firmware and guests (e.g. GPT
    # repair): snapshot=on keeps them in a temporary overlay, the image stays untouched.
    protect = ",snapshot=on" if medium.readonly and medium.kind is not MediaKind.CDROM else ""
    bootindex = f",bootindex={index}" if medium.boot else ""
    if medium.kind is MediaKind.CDROM:
        return [
            "-drive",
            f"if=none,id={drive_id},file={path},format={medium.format},media=cdrom,readonly=on",
            "-device", f"ide-cd,drive={drive_id},bus=ide.{index % 2}{bootindex}",
        ]  # fmt: skip
    if medium.kind is MediaKind.USB:
        return [
            "-drive", f"if=none,id={drive_id},file={path},format={medium.format}{protect}",
            "-device", f"usb-storage,bus=xhci.0,drive={drive_id},removable=on{bootindex}",
        ]  # fmt: skip
    return [
        "-drive", f"if=none,id={drive_id},file={path},format={medium.format}{protect}",
        "-device", f"virtio-blk-pci,drive={drive_id}{bootindex}",
    ]  # fmt: skip


def qemu_argv(spec: GuestSpec) -> list[str]:
    """The full QEMU command line for ``spec`` (pure; golden-tested)."""
    if spec.secure_boot and spec.firmware is not Firmware.UEFI:
        raise ValueError("Secure Boot needs UEFI firmware")
    machine = ["-machine", "q35,smm=on"] if spec.secure_boot else ["-machine", "pc"]
    argv = [
        QEMU,
        *machine,
        "-accel", spec.accel.value,
        "-cpu", "host" if spec.accel is Accel.KVM else "max",
        "-m", str(spec.memory_mb),
        "-smp", str(spec.cpus),
        "-display", "none",
        "-monitor", "none",
        "-serial", f"file:{os.fspath(spec.serial_log)}",
        "-no-reboot",
    ]  # fmt: skip
    if spec.firmware is Firmware.UEFI:
        if spec.ovmf is None:
            raise ValueError("a UEFI guest needs OVMF code and a private VARS copy")
        if spec.secure_boot:
            argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={option_path(spec.ovmf.code)}",
            "-drive", f"if=pflash,format=raw,unit=1,file={option_path(spec.ovmf.vars)}",
        ]  # fmt: skip
    if any(m.kind is MediaKind.USB for m in spec.media):
        argv += ["-device", "qemu-xhci,id=xhci"]
    for index, medium in enumerate(spec.media):
        argv += _drive_args(index, medium)
    if spec.kernel is not None:
        argv += ["-kernel", os.fspath(spec.kernel)]
        if spec.initrd is not None:
            argv += ["-initrd", os.fspath(spec.initrd)]
        if spec.append is not None:
            argv += ["-append", spec.append]
    if spec.network:
        forwards = "".join(
            f",hostfwd={f.protocol}:127.0.0.1:{f.host_port}-:{f.guest_port}" for f in spec.forwards
        )
        argv += ["-netdev", f"user,id=net0{forwards}", "-device", "virtio-net-pci,netdev=net0"]
    else:
        argv += ["-nic", "none"]
    argv += list(spec.extra)
    return argv


def kvm_probe_argv(serial_log: Path, ovmf: OvmfFiles) -> list[str]:
    """A disk-less OVMF boot under KVM that reports its boot manager on serial (pure).

    SeaBIOS alone is not enough: on some hosts it runs under KVM while anything that
    enters protected or long mode (GRUB, Linux, OVMF) hangs. OVMF runs in long mode and
    prints ``BdsDxe:`` lines on the serial port once it tries to boot.
    """
    return [
        QEMU,
        "-accel", "kvm",
        "-cpu", "host",
        "-m", "256",
        "-display", "none",
        "-monitor", "none",
        "-serial", f"file:{os.fspath(serial_log)}",
        "-nic", "none",
        "-no-reboot",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={option_path(ovmf.code)}",
        "-drive", f"if=pflash,format=raw,unit=1,file={option_path(ovmf.vars)}",
    ]  # fmt: skip


_KVM_PROBE_DONE = re.compile(r"BdsDxe:")


class SerialLog:
    """A guest's serial console file, read on from where the previous read stopped.

    ``read()`` returns everything so far, as ``read_text(errors="replace")`` would show it
    (UTF-8, universal newlines) without reading the file again from the start. A file that
    shrank (truncated for a new boot) is read again from its beginning.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reset()

    def _reset(self) -> None:
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._cr_pending = False  # the text so far ends in a "\r" already shown as "\n"
        self._text = ""

    def read(self) -> str:
        try:
            with self.path.open("rb") as handle:
                if os.fstat(handle.fileno()).st_size < self._offset:
                    self._reset()
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return self._text
        self._offset += len(data)
        # An incomplete UTF-8 sequence at the end stays in the decoder until the rest arrives.
        chunk = self._decoder.decode(data)
        if not chunk:
            return self._text
        if self._cr_pending and chunk.startswith("\n"):
            chunk = chunk[1:]  # the "\n" of a "\r\n" split between two reads
        if chunk:
            self._cr_pending = chunk.endswith("\r")
            self._text += chunk.replace("\r\n", "\n").replace("\r", "\n")
        else:
            self._cr_pending = False
        return self._text


def kvm_works(timeout: float = 30.0) -> bool:
    """Whether a guest really runs under KVM here (a tiny OVMF boot, not just /dev/kvm)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="isobuild-kvm-") as tmp:
        try:
            ovmf = ovmf_copy(Path(tmp))
        except EnvironmentProblem:
            return False
        serial_log = Path(tmp) / "serial.log"
        with spawn(
            kvm_probe_argv(serial_log, ovmf),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            grace=STOP_GRACE_SECONDS,
        ) as proc:
            console = SerialLog(serial_log)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if _KVM_PROBE_DONE.search(console.read()):
                    return True
                time.sleep(POLL_SECONDS)
            return False


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@functools.cache
def detect_accel(cache_dir: Path | None = None) -> Accel:
    """``kvm`` when a probe boot completes under it, else ``tcg``.

    ``ISOBUILD_ACCEL=tcg|kvm`` skips the probe. The answer is remembered per host boot
    (keyed by the kernel's boot_id) under ``cache_dir`` when given, since a failed probe
    costs its whole timeout.
    """
    forced = os.environ.get("ISOBUILD_ACCEL")
    if forced:
        return Accel(forced)
    remembered = cache_dir / "kvm-probe" if cache_dir is not None else None
    try:
        boot_id = BOOT_ID.read_text().strip()
    except OSError:
        boot_id = ""
    if remembered is not None and boot_id:
        with contextlib.suppress(OSError, ValueError):
            stored_id, _, stored = remembered.read_text().partition(" ")
            if stored_id == boot_id:
                return Accel(stored.strip())
    accel = Accel.KVM if kvm_works() else Accel.TCG
    log.info("QEMU accelerator: %s (probed)", accel)
    if remembered is not None and boot_id:
        with contextlib.suppress(OSError):
            remembered.parent.mkdir(parents=True, exist_ok=True)
            remembered.write_text(f"{boot_id} {accel}\n")
    return accel


def ovmf_copy(workdir: Path, *, secure_boot: bool = False) -> OvmfFiles:
    """OVMF code plus a fresh copy of the variable store in ``workdir`` (never shared).

    ``secure_boot``: the SMM code and the store with Microsoft's keys, Secure Boot on.
    """
    code, store = (OVMF_SECBOOT_CODE, OVMF_MS_VARS) if secure_boot else (OVMF_CODE, OVMF_VARS)
    for path in (code, store):
        if not path.is_file():
            raise EnvironmentProblem(
                f"{path}: OVMF firmware not found", hint="install it: sudo apt-get install ovmf"
            )
    workdir.mkdir(parents=True, exist_ok=True)
    vars_copy = workdir / "OVMF_VARS.fd"
    shutil.copyfile(store, vars_copy)
    return OvmfFiles(code=code, vars=vars_copy)


class Guest:
    """One running QEMU guest; a context manager that always reaps the process.

    ``wait_for(regex)`` follows the serial log; QEMU's own stderr goes to
    ``<serial_log>.qemu.log`` for errors.
    """

    def __init__(self, spec: GuestSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self._running = contextlib.ExitStack()
        self.started = 0.0
        self.qemu_log = spec.serial_log.with_name(spec.serial_log.name + ".qemu.log")
        self._console = SerialLog(spec.serial_log)

    def __enter__(self) -> Guest:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        find_program(QEMU)
        self.spec.serial_log.parent.mkdir(parents=True, exist_ok=True)
        self.spec.serial_log.write_bytes(b"")
        self._console = SerialLog(self.spec.serial_log)
        with self.qemu_log.open("wb") as err:
            self.proc = self._running.enter_context(
                spawn(
                    qemu_argv(self.spec),
                    stdout=err,
                    stderr=subprocess.STDOUT,
                    grace=STOP_GRACE_SECONDS,
                )
            )
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def console(self) -> str:
        """The serial output so far (read on from the previous call, not from the start)."""
        return self._console.read()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for(
        self,
        pattern: str | re.Pattern[str],
        timeout: float,
        *,
        cancel: threading.Event | None = None,
    ) -> re.Match[str]:
        """The first match of ``pattern`` in the serial log; BootError on timeout or exit.

        Setting ``cancel`` (from another thread) ends the wait within one poll.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.console())
            if match:
                return match
            if cancel is not None and cancel.is_set():
                raise BootError(f"cancelled while waiting for {regex.pattern!r}")
            if not self.running():
                raise BootError(
                    f"guest exited before {regex.pattern!r} appeared on the serial console "
                    f"(log: {self.spec.serial_log}){self._qemu_error()}"
                )
            if time.monotonic() >= deadline:
                raise BootError(
                    f"{regex.pattern!r} did not appear on the serial console within "
                    f"{timeout:g} s (log: {self.spec.serial_log})"
                )
            time.sleep(POLL_SECONDS)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the guest to power off; BootError if it is still running after timeout."""
        assert self.proc is not None, "guest not started"
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BootError(
                f"guest still running after {timeout:g} s (log: {self.spec.serial_log})"
            ) from exc

    def stop(self) -> None:
        """End the guest if it still runs (SIGTERM, then SIGKILL) and reap it."""
        self._running.close()

    def _qemu_error(self) -> str:
        try:
            text = self.qemu_log.read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""
        return f": {text.splitlines()[-1]}" if text else ""
