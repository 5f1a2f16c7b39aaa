"""`build(config, tools, options)`: the base ISO in, the appliance ISO out, as named steps."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobuild import autoinstall, efi_chain, grub, manifest, md5sums, sbom, signing, trust_outputs
from isobuild.config import BuildConfig
from isobuild.digest import BackgroundDigest, DigestCache, sha256_and_md5
from isobuild.efi_inventory import EfiInventory
from isobuild.errors import (
    ConfigError,
    EnvironmentProblem,
    OutputExistsError,
    SourceIsoError,
    VerificationError,
)
from isobuild.grub import GrubEditError
from isobuild.payload_stage import stage_payload
from isobuild.progress import Progress
from isobuild.source_iso import BaseIsoFacts, SourceIso, check_live_server
from isobuild.verify import check_digest, check_signature, expected_from_sums
from isobuild.xorriso import IsoEdit, Remaster, WriteResult, Xorriso, parent_dirs

log = logging.getLogger(__name__)

GRUB_CFG = "/boot/grub/grub.cfg"
LOOPBACK_CFG = "/boot/grub/loopback.cfg"
DISK_INFO = "/.disk/info"
SPACE_MARGIN = 64 << 20  # directory records, padding, the manifest
TEMP_PREFIX = ".isobuild-"
SNAPSHOT_MAX = 8 << 20  # files up to this size are copied when added (see _snapshot)


@dataclass(frozen=True, kw_only=True)
class Tools:
    """The external programs a build drives, chosen once at the edge (fakes in tests)."""

    xorriso: Xorriso


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
    # Payload (isobuild/payload_stage.py): None is the config's payload.lock.
    lock: Path | None = None
    mirror: str | None = None  # an http(s) URL or a directory with the mirror layout
    offline: bool = False
    # Sign SHA256SUMS with this key (fingerprint or key file); None: the config's signing.key.
    sign_key: str | None = None


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
    tool_version: str = field(default_factory=lambda: _isobuild_version())

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


# --- steps ---------------------------------------------------------------------------------


def check_output(ctx: BuildContext) -> None:
    """The output directory is usable and the outputs do not exist (unless --force)."""
    for final in _final_paths(ctx):
        if final.exists() and not ctx.options.force:
            raise OutputExistsError(f"{final}: already exists", hint="pass --force to replace it")


def open_base(ctx: BuildContext) -> None:
    """Open the base ISO and refuse anything that is not 24.04.x live-server amd64."""
    ctx.source.open()
    ctx.base = check_live_server(ctx.source)
    ctx.epoch = _source_date_epoch(ctx)
    log.info("base ISO: %s (%s)", ctx.options.base_iso.name, ctx.base.disk_info)


def verify_base(ctx: BuildContext) -> None:
    """Check a pinned sha256 and a (signed) SHA256SUMS first; else hash while writing."""
    check = ctx.options.check
    iso = ctx.options.base_iso
    cache = DigestCache(ctx.options.cache_dir)
    expected: list[tuple[str, str]] = []  # (digest, where it was pinned): each must match
    if check.sha256sums is not None:
        if check.signature is not None:
            check_signature(check.sha256sums, check.signature, check.keyring or Path())
        text = _read_text(check.sha256sums, "SHA256SUMS")
        expected.append(
            (expected_from_sums(text, check.sha256sums, iso.name), str(check.sha256sums))
        )
    if check.sha256 is not None:
        expected.append((check.sha256, "--sha256"))
    ctx.base_digest = BackgroundDigest(cache, iso)
    for digest, source in expected:
        check_digest(ctx.base_digest.result(), digest, iso, source)


def add_autoinstall(ctx: BuildContext) -> None:
    """/autoinstall.yaml and the NoCloud seed, rendered and validated."""
    rendered = autoinstall.render_autoinstall(ctx.config)
    for iso_path, text in rendered.files.items():
        ctx.add_bytes(iso_path, text)


def edit_grub(ctx: BuildContext) -> None:
    """Autoinstall arguments on every installer entry; menu settings; installed-system check."""
    assert ctx.base is not None
    args = grub.AUTOINSTALL_ARGS
    settings = ctx.config.iso.grub
    try:
        cfg = grub.configure_menu(
            grub.add_kernel_args(ctx.base.grub_cfg, args),
            timeout=settings.timeout,
            default=settings.default,
            installed_marker=autoinstall.installed_marker(ctx.config),
            name=ctx.config.name,
        )
    except GrubEditError as exc:
        raise ConfigError(f"{ctx.config.source}: iso.grub.default: {exc}") from exc
    ctx.add_bytes(GRUB_CFG, cfg)
    if ctx.base.loopback_cfg is not None:
        ctx.add_bytes(LOOPBACK_CFG, grub.add_kernel_args(ctx.base.loopback_cfg, args))


def set_disk_info(ctx: BuildContext) -> None:
    assert ctx.base is not None
    info = ctx.config.iso.disk_info
    if info is None:
        info = f"{ctx.config.name} {ctx.config.version} (from {ctx.base.disk_info})"
    ctx.add_bytes(DISK_INFO, info.replace("\n", " ").strip() + "\n")


def write_md5sums(ctx: BuildContext) -> None:
    """md5sum.txt with every added or changed file, so casper's check passes."""
    assert ctx.base is not None
    current = ctx.base.md5sum_txt or ""
    try:
        text = md5sums.update(current, {p: f.md5 for p, f in ctx.files.items()})
    except md5sums.Md5SumsFormatError as exc:
        raise SourceIsoError(f"{ctx.options.base_iso}: /md5sum.txt: {exc}") from exc
    ctx.add_bytes(md5sums.MD5SUM_PATH, text)


def check_space(ctx: BuildContext) -> None:
    """Refuse before writing when the output filesystem cannot hold the ISO."""
    base_size = ctx.options.base_iso.stat().st_size
    needed = base_size + sum(f.size for f in ctx.files.values()) + SPACE_MARGIN
    free = shutil.disk_usage(ctx.workdir).free
    if free < needed:
        raise EnvironmentProblem(
            f"{ctx.options.output_dir}: {_gib(free)} free, the ISO needs about {_gib(needed)}",
            hint="free some space or choose another --output-dir",
        )


def write_iso(ctx: BuildContext) -> None:
    """One xorriso pass from the base ISO, boot records replayed, hashed while written."""
    assert ctx.base is not None
    edits = tuple(
        IsoEdit(iso_path=f.iso_path, local_path=f.local_path, mode=f.mode)
        for f in ctx.files.values()
    )
    parents = {d for f in ctx.files.values() for d in parent_dirs(f.iso_path)}
    new_dirs = sorted(d for d in parents if not ctx.source.exists(d))
    spec = Remaster(
        base=ctx.options.base_iso, volume_id=ctx.config.volume_id, joliet=ctx.base.has_joliet,
        edits=edits, new_dirs=tuple(new_dirs), epoch=ctx.epoch,
    )  # fmt: skip
    # pycdlib holds the base open read-only; xorriso reads it in parallel, that is fine.
    partial = ctx.workdir / ctx.config.iso_filename
    label = f"writing {ctx.config.iso_filename}"
    with (
        Progress(label, 100.0, enabled=Progress.wanted(ctx.options.quiet)) as progress,
        partial.open("wb") as out,
    ):
        # No fsync: like cp, the kernel writes the data back; the rename makes the
        # complete file appear at once, which is what readers of the output dir need.
        ctx.write = ctx.tools.xorriso.write(spec, out, progress.update)
    ctx.outputs[partial] = ctx.options.output_dir / ctx.config.iso_filename


def write_checksum_and_manifest(ctx: BuildContext) -> None:
    assert ctx.base is not None
    assert ctx.write is not None
    assert ctx.base_digest is not None
    name = ctx.config.iso_filename
    sums = ctx.workdir / f"{name}.sha256"
    sums.write_text(f"{ctx.write.sha256}  {name}\n")
    ctx.outputs[sums] = ctx.options.output_dir / sums.name
    base = ctx.options.base_iso
    text = manifest.render(
        name=ctx.config.name,
        version=ctx.config.version,
        base={
            "name": base.name,
            "size": base.stat().st_size,
            "sha256": ctx.base_digest.result(),
            "volume_id": ctx.base.volume_id,
            "disk_info": ctx.base.disk_info,
        },
        config={"source": ctx.config.source.name, "sha256": ctx.config.sha256},
        output={
            "file": name,
            "size": ctx.write.size,
            "sha256": ctx.write.sha256,
            "volume_id": ctx.config.volume_id,
        },
        files=[
            manifest.FileRecord(path=f.iso_path, sha256=f.sha256, size=f.size, action=f.action)
            for f in ctx.files.values()
        ],
        tools={"xorriso": ctx.tools.xorriso.version(), "isobuild": ctx.tool_version},
        source_date_epoch=ctx.epoch,
        extra=ctx.manifest_extra,
        efi_binaries=ctx.output_efi.as_json() if ctx.output_efi is not None else [],
    )
    path = ctx.workdir / "build-manifest.json"
    path.write_text(text)
    ctx.outputs[path] = ctx.options.output_dir / path.name


def publish(ctx: BuildContext) -> None:
    """Rename the finished files into place (see :func:`place_outputs`)."""
    place_outputs(ctx.outputs, aside=ctx.workdir / "replaced")
    if ctx.signing_fingerprint is None:
        # A signature left by an earlier (--force) build would not match the new SHA256SUMS.
        (ctx.options.output_dir / signing.SIGNATURE).unlink(missing_ok=True)


def place_outputs(outputs: Mapping[Path, Path], *, aside: Path) -> None:
    """Rename each temp file to its final path; the ISO last, so it never lacks its checksum.

    Files being replaced (``--force``) are first moved into ``aside``, a directory on the
    same filesystem: if placing stops half-way, the old set is put back whole, so the
    output directory never mixes an old ISO with a new checksum or manifest.
    """
    aside.mkdir(exist_ok=True)
    moved: list[Path] = []
    done: list[Path] = []
    try:
        for final in outputs.values():
            if final.exists():
                final.replace(aside / final.name)
                moved.append(final)
        for temp, final in sorted(outputs.items(), key=lambda kv: kv[1].suffix == ".iso"):
            temp.replace(final)
            done.append(final)
    except BaseException:
        for final in done:
            final.unlink(missing_ok=True)
        for final in moved:
            (aside / final.name).replace(final)
        raise


def steps() -> list[Step]:
    """The build, top to bottom."""
    return [
        check_output,
        trust_outputs.check_signing_key,
        open_base,
        verify_base,
        efi_chain.inventory_base,
        add_autoinstall,
        edit_grub,
        set_disk_info,
        stage_payload,
        write_md5sums,
        check_space,
        write_iso,
        efi_chain.check_chain_kept,
        write_checksum_and_manifest,
        trust_outputs.write_sbom,
        trust_outputs.write_sums,
        publish,
    ]


def build(config: BuildConfig, tools: Tools, options: BuildOptions) -> BuildResult:
    """Run every step; on any error or interrupt nothing is left in the output directory."""
    with _workdir(options.output_dir) as workdir:
        staging = workdir / "staging"
        staging.mkdir()
        ctx = BuildContext(
            config=config, tools=tools, options=options, workdir=workdir, staging=staging,
            source=SourceIso(options.base_iso),
        )  # fmt: skip
        try:
            for step in steps():
                log.debug("step: %s", step.__name__)
                step(ctx)
        finally:
            ctx.source.close()
        assert ctx.write is not None
        final = options.output_dir / config.iso_filename
        return BuildResult(
            iso=final,
            sha256_file=final.with_name(final.name + ".sha256"),
            manifest=options.output_dir / "build-manifest.json",
            sha256=ctx.write.sha256,
            size=ctx.write.size,
            standin_artifacts=ctx.standin_artifacts,
            warnings=tuple(ctx.warnings),
            sbom=options.output_dir / sbom.FILE_NAME,
            sha256sums=options.output_dir / signing.SUMS,
            signature=options.output_dir / signing.SIGNATURE if ctx.signing_fingerprint else None,
            signed_by=ctx.signing_fingerprint,
        )


# --- helpers of the steps above ------------------------------------------------------------


def _final_paths(ctx: BuildContext) -> list[Path]:
    out = ctx.options.output_dir
    iso = out / ctx.config.iso_filename
    return [
        iso, iso.with_name(iso.name + ".sha256"), out / "build-manifest.json",
        out / sbom.FILE_NAME, out / signing.SUMS, out / signing.SIGNATURE,
    ]  # fmt: skip


@contextmanager
def _workdir(output_dir: Path) -> Iterator[Path]:
    """A private directory inside the output directory (same filesystem: renames are atomic)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise EnvironmentProblem(f"{output_dir}: exists and is not a directory")
    created = not output_dir.exists()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=output_dir))
    except OSError as exc:
        raise EnvironmentProblem(
            f"{output_dir}: output directory is not writable ({exc.strerror})",
            hint="choose a writable --output-dir",
        ) from exc
    try:
        yield workdir
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        if created:
            # Only the directory this build made, and only while it is empty.
            with contextlib.suppress(OSError):
                output_dir.rmdir()
        raise
    shutil.rmtree(workdir, ignore_errors=True)


def _source_date_epoch(ctx: BuildContext) -> int:
    if ctx.options.source_date_epoch is not None:
        return ctx.options.source_date_epoch
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return int(env)
        except ValueError:
            raise ConfigError(
                f"SOURCE_DATE_EPOCH: expected seconds since 1970, got {env!r}"
            ) from None
    epoch = ctx.source.modification_epoch()
    return epoch if epoch is not None else int(ctx.options.base_iso.stat().st_mtime)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def _isobuild_version() -> str:
    try:
        return importlib.metadata.version("isobuild")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
