"""Build steps for what lets a customer trust the ISO: the SBOM, SHA256SUMS and its signature.

``sbom.cdx.json`` lists what is inside (isobuild/release/sbom.py). ``SHA256SUMS`` covers the ISO,
``build-manifest.json`` and the SBOM; with a signing key (``--sign-key`` or ``signing.key``)
``SHA256SUMS.gpg`` is its detached signature (isobuild/release/signing.py). The key is checked
before anything is built and never enters the output directory, the manifest or a log.
"""

from __future__ import annotations

import logging

from isobuild.artifacts.lockfile import load_lock
from isobuild.build.context import BuildContext
from isobuild.build.steps import isobuild_version
from isobuild.digest import sha256_file
from isobuild.release import sbom, signing

log = logging.getLogger(__name__)

MANIFEST = "build-manifest.json"


def sign_key(ctx: BuildContext) -> str | None:
    return ctx.options.sign_key or ctx.config.signing.key


def check_signing_key(ctx: BuildContext) -> None:
    """An expired, revoked or missing key fails the build now, not after writing the ISO."""
    key = sign_key(ctx)
    if key is not None:
        ctx.signing_fingerprint = signing.check_key(key)


def write_sbom(ctx: BuildContext) -> None:
    assert ctx.base is not None
    assert ctx.write is not None
    assert ctx.base_digest is not None
    assert ctx.output_efi is not None
    base = ctx.options.base_iso
    inputs = sbom.SbomInputs(
        name=ctx.config.name,
        version=ctx.config.version,
        iso_file=ctx.config.iso_filename,
        iso_sha256=ctx.write.sha256,
        epoch=ctx.epoch,
        tool_version=isobuild_version(),
        base_name=base.name,
        base_sha256=ctx.base_digest.result(),
        base_volume_id=ctx.base.volume_id,
        base_disk_info=ctx.base.disk_info,
        lock=load_lock(ctx.options.lock or ctx.config.payload.lock),
        files=[
            sbom.IsoFileRecord(path=f.iso_path, sha256=f.sha256, size=f.size)
            for f in sorted(ctx.files.values(), key=lambda f: f.iso_path)
        ],
        efi=ctx.output_efi.entries,
    )
    path = ctx.workdir / sbom.FILE_NAME
    path.write_text(sbom.render(inputs))
    ctx.outputs[path] = ctx.options.output_dir / path.name


def write_sums(ctx: BuildContext) -> None:
    """SHA256SUMS over the ISO, the manifest and the SBOM; signed when a key is set."""
    assert ctx.write is not None
    digests = {ctx.config.iso_filename: ctx.write.sha256}
    for name in (MANIFEST, sbom.FILE_NAME):
        digests[name] = sha256_file(ctx.workdir / name)
    sums = ctx.workdir / signing.SUMS
    sums.write_text(signing.render_sums(digests))
    ctx.outputs[sums] = ctx.options.output_dir / sums.name
    key = sign_key(ctx)
    if key is None:
        return
    signature = ctx.workdir / signing.SIGNATURE
    ctx.signing_fingerprint = signing.sign_file(sums, signature, key)
    ctx.outputs[signature] = ctx.options.output_dir / signature.name
    log.info("signed %s with %s", signing.SUMS, ctx.signing_fingerprint)
