"""The ISO to flash: an ISO 9660 image whose sha256 is known before anything is written."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from isobuild.errors import SourceIsoError, VerificationError
from isobuild.iso import magic
from isobuild.iso.verify import check_digest, expected_from_sums, normalize_sha256


@dataclass(frozen=True, kw_only=True)
class Image:
    path: Path
    size: int
    sha256: str  # expected
    source: str  # where the expected digest came from


def sums_path(iso: Path) -> Path:
    """``NAME.iso.sha256``, as `isobuild build` writes it beside the ISO."""
    return iso.with_name(iso.name + ".sha256")


def open_image(iso: Path, sha256: str | None) -> Image:
    """Check that ``iso`` is an ISO 9660 image and find the digest it must have."""
    try:
        # Non-blocking: opening a named pipe to read would wait for a writer for ever.
        fd = os.open(iso, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SourceIsoError(f"{iso}: ISO not found", hint="check the path") from None
    except OSError as exc:
        raise SourceIsoError(f"{iso}: cannot read it ({exc.strerror})") from None
    try:
        info = os.fstat(fd)  # what was opened, not what the path names by now
        if stat.S_ISDIR(info.st_mode):
            raise SourceIsoError(f"{iso}: is a directory, expected an ISO image")
        if not stat.S_ISREG(info.st_mode):
            raise SourceIsoError(f"{iso}: is not a regular file, expected an ISO image")
        is_iso = magic.has_magic(fd)
    except OSError as exc:
        raise SourceIsoError(f"{iso}: cannot read it ({exc.strerror})") from None
    finally:
        os.close(fd)
    size = info.st_size
    if not is_iso:
        raise SourceIsoError(f"{iso}: {magic.NOT_ISO}",
                             hint="pass the .iso file `isobuild build` wrote")  # fmt: skip
    if sha256 is not None:
        return Image(path=iso, size=size, sha256=normalize_sha256(sha256, "--sha256"),
                     source="--sha256")  # fmt: skip
    sums = sums_path(iso)
    try:
        text = sums.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VerificationError(
            f"{sums}: not found, and no --sha256 given: the ISO cannot be verified",
            hint="keep the .sha256 `isobuild build` wrote beside the ISO, or pass --sha256 HEX",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{sums}: cannot read it ({exc})") from None
    return Image(path=iso, size=size, sha256=expected_from_sums(text, sums, iso.name),
                 source=str(sums))  # fmt: skip


@dataclass(frozen=True)
class Identity:
    """What changes when a file is replaced or written to: its inode, size and times."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


def identity(path: Path) -> Identity:
    try:
        st = path.stat()
    except OSError as exc:
        raise SourceIsoError(f"{path}: cannot read it ({exc.strerror})") from None
    return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def check_unchanged(image: Image, before: Identity, when: str) -> None:
    """The ISO must be the file whose sha256 was checked: any write changes its ctime."""
    if identity(image.path) != before:
        raise VerificationError(
            f"{image.path}: the ISO changed {when}",
            hint="make sure nothing writes to the ISO, then run the command again",
        )


def check(image: Image, actual: str) -> None:
    """The ISO's digest, read before writing, must be the one pinned for it."""
    try:
        check_digest(actual, image.sha256, image.path, image.source)
    except VerificationError as exc:
        raise VerificationError(exc.message + ": nothing was written", hint=exc.hint) from None
