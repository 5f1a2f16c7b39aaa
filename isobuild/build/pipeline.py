"""`build(config, tools, options)`: the base ISO in, the appliance ISO out, as named steps."""

from __future__ import annotations

import logging

from isobuild import no_room
from isobuild.build import efi_chain, trust_outputs, work_dir
from isobuild.build.context import BuildContext, BuildOptions, BuildResult, Step, Tools
from isobuild.build.steps import (
    add_autoinstall,
    check_output,
    check_space,
    edit_grub,
    open_base,
    publish,
    set_disk_info,
    stage_payload,
    verify_base,
    write_checksum_and_manifest,
    write_iso,
    write_md5sums,
)
from isobuild.config import BuildConfig
from isobuild.iso.source import SourceIso
from isobuild.release import sbom, signing

log = logging.getLogger(__name__)


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
    with work_dir.private(options.output_dir) as workdir:
        staging = workdir / "staging"
        ctx = BuildContext(
            config=config, tools=tools, options=options, workdir=workdir, staging=staging,
            source=SourceIso(options.base_iso),
        )  # fmt: skip
        try:
            staging.mkdir()
            for step in steps():
                log.debug("step: %s", step.__name__)
                step(ctx)
        except OSError as exc:
            # The build's other writes go to the cache, whose errors name it themselves
            # (isobuild.artifacts.fetch): a write that names no file was into the output.
            if not no_room.within(exc, options.output_dir):
                raise
            # Here, before the cleanup frees what the build wrote: the hint reads df -i.
            raise no_room.problem(
                exc, options.output_dir, "writing the build's files", "choose another --output-dir"
            ) from exc
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
