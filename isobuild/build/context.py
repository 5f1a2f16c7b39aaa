"""The state build steps share: the config, tools, options, and every file added to the ISO."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobuild.config import BuildConfig
from isobuild.digest import BackgroundDigest, sha256_and_md5
from isobuild.errors import VerificationError
from isobuild.iso.efi_inventory import EfiInventory
from isobuild.iso.gpgv import Gpgv
from isobuild.iso.source import BaseIsoFacts, SourceIso
from isobuild.iso.xorriso import WriteResult, Xorriso

SNAPSHOT_MAX = 8 << 20  # files up to this size are copied when added (see _snapshot)


@dataclass(frozen=True, kw_only=True)
class Tools:
    """The external programs a build drives, chosen once at the edge (fakes in tests)."""

    xorriso: Xorriso
    gpgv: Gpgv


@dataclass(frozen=True, kw_only=True)
class BaseIsoCheck:
    """What the base ISO must match before anything is written (all optional)."""

    sha256: str | None = None
    sha256sums: Path | None = None
    signature: Path | None = None
    keyring: Path | None = None


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    base_iso: Path
    output_dir: Path
    cache_dir: Path
    force: bool = False
    quiet: bool = False
    check: BaseIsoCheck = BaseIsoCheck()
    # None: $SOURCE_DATE_EPOCH, else the base ISO's volume modification date.
    source_date_epoch: int | None = None
    # Payload (isobuild/installer/payload.py): None is the config's payload.lock.
    lock: Path | None = None
    mirror: str | None = None  # an http(s) URL or a directory with the mirror layout
    offline: bool = False
    # Sign SHA256SUMS with this key (fingerprint or key file); None: the config's signing.key.
    sign_key: str | None = None
    # The base ISO's digest, already started by the caller (the CLI starts it before loading
    # the build); None: verify_base starts it. It must be of base_iso, in cache_dir's cache.
    base_digest: BackgroundDigest | None = None


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    iso: Path
    sha256_file: Path
    manifest: Path
    sha256: str
    size: int
    standin_artifacts: bool  # the payload is the labelled stand-in k3s/Flux files
    warnings: tuple[str, ...] = ()  # said on the build's output (e.g. an unsigned boot chain)
    sbom: Path | None = None
    sha256sums: Path | None = None
    signature: Path | None = None  # SHA256SUMS.gpg when signed
    signed_by: str | None = None  # the signing key's fingerprint


@dataclass(frozen=True, kw_only=True)
class AddedFile:
    iso_path: str
    local_path: Path
    sha256: str
    md5: str
    size: int
    mode: int
    action: str  # "added" | "changed"


@dataclass(kw_only=True)
class BuildContext:
    """The state steps share. Steps add files with ``add_file``/``add_bytes``/``add_tree``.

    Every added or replaced file is recorded with its sha256 (manifest) and md5
    (md5sum.txt); ``manifest_extra`` is copied into build-manifest.json under ``extra``.
    ``staging`` is a private directory for files steps generate; it is removed at the end.
    """

    config: BuildConfig
    tools: Tools
    options: BuildOptions
    workdir: Path
    staging: Path
    source: SourceIso
    base: BaseIsoFacts | None = None
    epoch: int = 0
    base_digest: BackgroundDigest | None = None
    files: dict[str, AddedFile] = field(default_factory=dict)
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    standin_artifacts: bool = False  # set by the payload step
    write: WriteResult | None = None
    outputs: dict[Path, Path] = field(default_factory=dict)  # temp file → final path
    base_efi: EfiInventory | None = None  # the base's UEFI boot chain (efi_chain)
    output_efi: EfiInventory | None = None  # the same, read back from the written ISO
    warnings: list[str] = field(default_factory=list)
    signing_fingerprint: str | None = None

    def add_file(
        self,
        iso_path: str,
        local_path: Path,
        *,
        mode: int | None = None,
        sha256: str | None = None,
    ) -> AddedFile:
        """Put ``local_path`` on the ISO at ``iso_path`` (adding or replacing a file).

        ``sha256``, when the caller already verified the file, is checked in the same read
        that takes the md5: a file that changed since is refused, not recorded.
        """
        if not iso_path.startswith("/") or ".." in iso_path.split("/"):
            raise ValueError(f"ISO path must be absolute without '..': {iso_path!r}")
        local_path = self._snapshot(iso_path, local_path)
        sha, md5, size = sha256_and_md5(local_path)
        if sha256 is not None and sha != sha256:
            raise VerificationError(
                f"{local_path}: sha256 {sha}, but {iso_path} was planned as {sha256}: the "
                "file changed after it was verified",
                hint="something modified the cache or the source tree during the build; "
                "run the build again",
            )
        if mode is None:
            executable = local_path.stat().st_mode & stat.S_IXUSR
            mode = 0o555 if executable else 0o444
        action = "changed" if self.source.exists(iso_path) else "added"
        record = AddedFile(
            iso_path=iso_path, local_path=local_path, sha256=sha, md5=md5, size=size,
            mode=mode, action=action,
        )  # fmt: skip
        self.files[iso_path] = record
        return record

    def _snapshot(self, iso_path: str, local_path: Path) -> Path:
        """A private copy of a small file from outside ``staging``.

        xorriso reads mapped files only when it writes, long after their digests were
        taken: a file edited in between (a source tree under work) would make the ISO
        disagree with md5sum.txt. Big files come from the verified artifact cache, which
        nothing edits; copying them would cost gigabytes.
        """
        if local_path.is_relative_to(self.staging) or local_path.stat().st_size > SNAPSHOT_MAX:
            return local_path
        copy = self.staging / "snapshots" / iso_path.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, copy)
        shutil.copymode(local_path, copy)
        return copy

    def add_bytes(self, iso_path: str, data: bytes | str, *, mode: int = 0o444) -> AddedFile:
        """Write ``data`` under ``staging`` and put it on the ISO at ``iso_path``."""
        local = self.staging / iso_path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data.encode() if isinstance(data, str) else data)
        return self.add_file(iso_path, local, mode=mode)

    def add_tree(self, iso_dir: str, local_dir: Path) -> list[AddedFile]:
        """Every regular file under ``local_dir`` at the same relative path under ``iso_dir``."""
        added = []
        for path in sorted(local_dir.rglob("*")):
            if path.is_file() and not path.is_symlink():
                rel = path.relative_to(local_dir).as_posix()
                added.append(self.add_file(f"{iso_dir.rstrip('/')}/{rel}", path))
        return added


Step = Callable[[BuildContext], None]
