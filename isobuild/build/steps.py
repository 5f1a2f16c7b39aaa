"""The build's steps, each ``step(ctx) -> None`` over one :class:`BuildContext`, in order."""

from __future__ import annotations

import errno
import importlib.metadata
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isobuild import no_room
from isobuild.artifacts.lockfile import load_lock
from isobuild.build import manifest
from isobuild.build.context import BuildContext
from isobuild.digest import BackgroundDigest, DigestCache
from isobuild.errors import (
    ConfigError,
    EnvironmentProblem,
    SourceIsoError,
)
from isobuild.installer import autoinstall, build_info
from isobuild.installer.payload import ISO_DIR, MANIFEST, fetch_payload, plan_payload
from isobuild.iso import grub, md5sums
from isobuild.iso.grub import GrubEditError
from isobuild.iso.source import check_live_server
from isobuild.iso.verify import check_digest, check_signature, expected_from_sums
from isobuild.iso.xorriso import IsoEdit, Remaster, parent_dirs
from isobuild.output_file import check_replaceable
from isobuild.progress import Progress
from isobuild.release import sbom, signing

log = logging.getLogger(__name__)

GRUB_CFG = "/boot/grub/grub.cfg"
LOOPBACK_CFG = "/boot/grub/loopback.cfg"
DISK_INFO = "/.disk/info"
SPACE_MARGIN = 64 << 20  # directory records, padding, the manifest
EPOCH_MAX = 5869583999  # 2155-12-31 23:59:59 UTC: the last second an ISO 9660 record holds


def check_output(ctx: BuildContext) -> None:
    """The output directory is usable and the outputs do not exist (unless --force)."""
    for final in _final_paths(ctx):
        check_replaceable(final, force=ctx.options.force)


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
            check_signature(
                ctx.tools.gpgv, check.sha256sums, check.signature, check.keyring or Path()
            )
        text = _read_text(check.sha256sums, "SHA256SUMS")
        expected.append(
            (expected_from_sums(text, check.sha256sums, iso.name), str(check.sha256sums))
        )
    if check.sha256 is not None:
        expected.append((check.sha256, "--sha256"))
    ctx.base_digest = ctx.options.base_digest or BackgroundDigest(cache, iso)
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
    final = ctx.options.output_dir / ctx.config.iso_filename
    label = f"writing {ctx.config.iso_filename}"
    try:
        with (
            Progress(label, 100.0, enabled=Progress.wanted(ctx.options.quiet)) as progress,
            partial.open("wb") as out,
        ):
            # No fsync: the writer goes past the page cache where the filesystem allows
            # (isobuild.direct_io), else the kernel writes back as after cp; the rename
            # makes the complete file appear at once, which readers of the output dir need.
            ctx.write = ctx.tools.xorriso.write(spec, out, progress.update)
    except OSError as exc:  # the output's filesystem filled up or failed while writing
        no_inodes = exc.errno == errno.ENOSPC and no_room.inodes_exhausted(ctx.workdir)
        raise EnvironmentProblem(
            f"{final}: writing the ISO failed: {exc.strerror}",
            hint=iso_write_hint(exc.errno, no_inodes=no_inodes),
        ) from exc
    ctx.outputs[partial] = final


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
        tools={"xorriso": ctx.tools.xorriso.version(), "isobuild": isobuild_version()},
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


# --- the payload step (isobuild/installer/payload.py plans it) ------------------------------


def _base_identity(ctx: BuildContext) -> Mapping[str, Any]:
    assert ctx.base is not None
    return {
        "volume_id": ctx.base.volume_id,
        "disk_info": ctx.base.disk_info,
        "size": ctx.options.base_iso.stat().st_size,
    }


def stage_payload(ctx: BuildContext) -> None:
    """Put the payload directory on the ISO and its manifest into build-manifest.json."""
    options = ctx.options
    lock = load_lock(options.lock or ctx.config.payload.lock)
    fetched = fetch_payload(
        lock,
        cache_dir=options.cache_dir,
        mirror=options.mirror,
        offline=options.offline,
        progress=not options.quiet,
    )
    build = build_info.build_id(ctx.config, lock, _base_identity(ctx), ctx.epoch)
    plan = plan_payload(ctx.config, fetched, ctx.staging / "payload", build=build)
    for item in plan.files:
        mode = 0o555 if item.mode & 0o111 else 0o444
        # The planned digest is re-checked while the md5 is taken: the ISO gets the bytes
        # the payload manifest (and, for cached artifacts, the lock file) names.
        ctx.add_file(f"{ISO_DIR}/{item.path}", item.source, mode=mode, sha256=item.sha256)
    assert plan.manifest_file is not None
    ctx.add_file(f"{ISO_DIR}/{MANIFEST}", plan.manifest_file, mode=0o444)
    ctx.manifest_extra["payload"] = {
        "lock": {"file": lock.source.name, "sha256": lock.sha256},
        "standin": lock.standin,
        "build_id": build,
        "manifest": plan.manifest,
    }
    if lock.standin:
        ctx.standin_artifacts = True
        ctx.manifest_extra["standin_artifacts"] = True
        log.warning(
            "STAND-IN k3s/Flux artifacts (%s): the ISO installs and boots, but k3s cannot run",
            lock.source,
        )


# --- helpers of the steps above ------------------------------------------------------------


def _final_paths(ctx: BuildContext) -> list[Path]:
    out = ctx.options.output_dir
    iso = out / ctx.config.iso_filename
    return [
        iso, iso.with_name(iso.name + ".sha256"), out / "build-manifest.json",
        out / sbom.FILE_NAME, out / signing.SUMS, out / signing.SIGNATURE,
    ]  # fmt: skip


def _source_date_epoch(ctx: BuildContext) -> int:
    if ctx.options.source_date_epoch is not None:
        return _epoch_on_iso(ctx.options.source_date_epoch, "--source-date-epoch")
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return _epoch_on_iso(int(env), "SOURCE_DATE_EPOCH")
        except ValueError:
            raise ConfigError(
                f"SOURCE_DATE_EPOCH: expected seconds since 1970, got {env!r}"
            ) from None
    epoch = ctx.source.modification_epoch()
    return epoch if epoch is not None else int(ctx.options.base_iso.stat().st_mtime)


def _epoch_on_iso(epoch: int, source: str) -> int:
    """``epoch`` if an ISO 9660 directory record can hold it (years 1970-2155), else refused.

    The records count years from 1900 in one byte; xorriso refuses dates before 1970.
    """
    if not 0 <= epoch <= EPOCH_MAX:
        raise ConfigError(
            f"{source}: {epoch} is outside what an ISO 9660 date can hold (0 to {EPOCH_MAX}, "
            "1970 to 2155)",
            hint="pass seconds since 1970, e.g. `git log -1 --format=%ct`",
        )
    return epoch


def _read_text(path: Path, what: str) -> str:
    """``path``'s text; bytes that are not UTF-8 read as U+FFFD, which the checksum parser
    names as binary data on its line (a traceback before)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc


def iso_write_hint(code: int | None, *, no_inodes: bool = False) -> str:
    """What to do when writing the ISO into the output directory failed with ``code`` (pure)."""
    if code in (errno.ENOSPC, errno.EDQUOT) and not no_inodes:
        return (
            "free some space (the space check passed, so something else filled it) or "
            "choose another --output-dir"
        )
    return no_room.hint(code, "choose another --output-dir", no_inodes=no_inodes)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def isobuild_version() -> str:
    try:
        return importlib.metadata.version("isobuild")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
