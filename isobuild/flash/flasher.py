"""`flash(request, confirm)`: check the ISO and the target, ask, write, read back, compare."""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from isobuild.digest import sha256_file
from isobuild.direct_io import FILE_ALIGN
from isobuild.errors import ConfigError, FlashError, VerificationError
from isobuild.flash import image, probe, safety, writer
from isobuild.flash.chunk_digests import ChunkDigests, Digester
from isobuild.flash.mounts import unmount
from isobuild.progress import Progress

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    """How far a flash got: what an interrupt or a failure leaves on the target."""

    CHECKING = "checking"  # nothing written
    WRITING = "writing"  # the target is unusable until flashed again
    VERIFYING = "verifying"  # written, not verified
    DONE = "done"


@dataclass(frozen=True, kw_only=True)
class FlashRequest:
    iso: Path
    target: Path
    sha256: str | None = None  # else NAME.iso.sha256 beside the ISO
    options: safety.Options = field(default_factory=safety.Options)
    assume_yes: bool = False
    quiet: bool = False
    root: Path = Path("/")  # where sysfs, udev and /proc are read (tests: a recorded tree)


@dataclass(frozen=True, kw_only=True)
class FlashResult:
    target: Path
    image: image.Image
    write: writer.Timing
    verify: writer.Timing
    direct_read: bool  # the read-back bypassed the page cache


Confirm = Callable[[list[str]], bool]

CHANGED = "since its sha256 was checked: the target cannot be called verified"


class Flash:
    """One flash; ``phase`` says how far it got when it stopped."""

    def __init__(self, request: FlashRequest) -> None:
        self.request = request
        self.phase = Phase.CHECKING

    def _progress(self, label: str, total: int) -> Progress:
        enabled = Progress.wanted(self.request.quiet)
        return Progress(label, float(total), enabled=enabled, counts_bytes=True)

    def run(self, confirm: Confirm | None) -> FlashResult:
        """``confirm`` gets the lines describing the target; None means ``--yes`` was given."""
        req = self.request
        iso = image.open_image(req.iso, req.sha256)
        target = safety.resolve(req.target, req.iso, root=req.root)
        place = safety.iso_place(req.iso, target.disk)
        safety.check(target, iso_size=iso.size, options=req.options, iso=place)
        checked = self._check_iso(iso)
        if confirm is not None and not confirm(safety.describe(self._probed(target))):
            raise FlashError(f"{req.target}: not confirmed: nothing was written")
        if target.disk is not None and target.disk.mounts and req.options.unmount:
            unmount([u.mount for u in target.disk.mounts if u.mount is not None])
            # Looked at again: what was unmounted, and anything that changed meanwhile.
            target = safety.resolve(req.target, req.iso, root=req.root)
            safety.check(target, iso_size=iso.size, iso=place, options=safety.Options(
                allow_fixed=req.options.allow_fixed))  # fmt: skip
        return self._write(target, iso, *checked)

    def _probed(self, target: safety.Target) -> safety.Target:
        """``target`` with the filesystems udev did not describe probed, on the live system."""
        if target.disk is None or self.request.root != Path("/"):
            return target
        return dataclasses.replace(target, disk=probe.with_filesystems(target.disk))

    def verify(self) -> writer.Timing:
        """Only read the target back and compare it with the ISO: nothing is written."""
        req = self.request
        iso = image.open_image(req.iso, req.sha256)
        target = safety.resolve(req.target, req.iso, root=req.root)
        checked, digests = self._check_iso(iso)
        self.phase = Phase.VERIFYING
        align = target.disk.logical_block_size if target.disk is not None else FILE_ALIGN
        with self._progress(f"verifying {target.path}", iso.size) as bar:
            found = writer.read_back(target.path, iso.path, digests, align, bar.update)
        image.check_unchanged(iso, checked, CHANGED)
        self.phase = Phase.DONE
        _verdict(target.path, iso, found)
        return found.timing

    def _check_iso(self, iso: image.Image) -> tuple[image.Identity, ChunkDigests]:
        """The ISO's sha256 against the pinned one; the file as it was when hashed, and the
        digests of its chunks, taken from the bytes hashed, which the read-back checks."""
        started = time.monotonic()
        before = image.identity(iso.path)
        chunks = Digester()
        with self._progress(f"checking {iso.path.name}", iso.size) as bar:
            actual = sha256_file(iso.path, progress=bar.update, also=chunks)
        image.check(iso, actual)
        image.check_unchanged(iso, before, "while it was checked")
        digests = chunks.result()
        if digests.size != iso.size:
            raise VerificationError(
                f"{iso.path}: the ISO changed since it was opened ({digests.size} bytes "
                f"hashed, {iso.size} expected): nothing was written",
                hint="make sure nothing writes to the ISO, then run the command again",
            )
        log.info("%s: sha256 %s matches %s (%.1f s)", iso.path.name, actual, iso.source,
                 time.monotonic() - started)  # fmt: skip
        return before, digests

    def _write(
        self,
        target: safety.Target,
        iso: image.Image,
        checked: image.Identity,
        digests: ChunkDigests,
    ) -> FlashResult:
        disk = target.disk
        align = disk.logical_block_size if disk is not None else FILE_ALIGN
        size = disk.size if disk is not None else 0
        with writer.open_target(target.path, block=disk is not None, align=align,
                                size=size) as device:  # fmt: skip
            self.phase = Phase.WRITING
            with self._progress(f"writing {target.path}", iso.size) as bar:
                wrote = writer.write_image(iso.path, iso.size, device, bar.update)
            self.phase = Phase.VERIFYING
            # Read back while the exclusive hold keeps automounters off the new partitions.
            with self._progress(f"verifying {target.path}", iso.size) as bar:
                found = writer.read_back(target.path, iso.path, digests, align, bar.update)
        # Said before the verdict: a changed ISO was written from other bytes than hashed.
        image.check_unchanged(iso, checked, CHANGED)
        self.phase = Phase.DONE  # read back: a mismatch below is the stick's verdict
        _verdict(target.path, iso, found)
        return FlashResult(target=target.path, image=iso, write=wrote, verify=found.timing,
                           direct_read=found.direct)  # fmt: skip


def _verdict(path: Path, iso: image.Image, found: writer.ReadBack) -> None:
    hint = "the stick is faulty or smaller than it claims: flash it again or use another"
    if found.ends_at is not None:
        raise FlashError(
            f"{path}: verify failed: it ends at byte {found.ends_at}, before the ISO's "
            f"{iso.size} bytes",
            hint=hint,
        )
    if found.difference is not None:
        raise FlashError(
            f"{path}: verify failed: byte {found.difference} (sector {found.difference // 512})"
            f" differs from the ISO, whose {iso.size} bytes have sha256 {iso.sha256}",
            hint=hint,
        )


def require_terminal(assume_yes: bool, stdin_is_tty: bool, target: Path) -> None:
    """A prompt needs someone to answer it: without a terminal, only ``--yes`` will do."""
    if not assume_yes and not stdin_is_tty:
        raise ConfigError(
            f"{target}: stdin is not a terminal, so nobody can confirm overwriting it",
            hint="pass --yes to confirm in scripts and CI",
        )
