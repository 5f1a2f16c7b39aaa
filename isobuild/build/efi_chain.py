"""Build steps that keep the base ISO's UEFI boot chain and prove it was kept.

The replay remaster never writes the ESP or ``/EFI``, so the chain is kept by
construction; these steps check it anyway: every EFI binary of the base (El Torito image,
appended ESP, ISO 9660 ``/EFI`` and the kernels) must be byte-identical in the output, or
the build fails naming the file. An unsigned base chain is reported, never silent.
"""

from __future__ import annotations

import logging

from isobuild.build.context import BuildContext
from isobuild.errors import VerificationError
from isobuild.iso.efi_inventory import chain_warning, changed_binaries, read_inventory

log = logging.getLogger(__name__)


def inventory_base(ctx: BuildContext) -> None:
    """Read the base ISO's EFI binaries and say so when its chain is unsigned."""
    inventory = read_inventory(ctx.options.base_iso, source=ctx.source)  # open_base opened it
    ctx.base_efi = inventory
    for problem in inventory.problems:
        log.warning("base ISO: %s", problem)
    warning = chain_warning(inventory)
    if warning is not None:
        ctx.warnings.append(warning)  # the CLI prints it on the build's output
        log.debug("%s", warning)


def check_chain_kept(ctx: BuildContext) -> None:
    """The written ISO has every EFI binary of the base, byte for byte, and no other."""
    assert ctx.base_efi is not None
    # As write_iso wrote it. A binary with a sha256 of the base's is the base's binary, so
    # only a changed one is parsed again (the check itself compares the digests).
    output = read_inventory(
        ctx.workdir / ctx.config.iso_filename, known=(e.binary for e in ctx.base_efi.entries)
    )
    changes = changed_binaries(ctx.base_efi.by_key(), output.by_key())
    if changes:
        lines = [
            f"{key}: sha256 {before or '(absent)'} in the base, {after or '(absent)'} in the output"
            for key, before, after in changes
        ]
        raise VerificationError(
            f"{ctx.options.base_iso.name}: the output changed the UEFI boot chain: "
            + "; ".join(lines),
            hint="nothing may replace files under /EFI, the ESP or the kernels; remove the "
            "edit that touches them (Secure Boot machines would refuse the ISO)",
        )
    ctx.output_efi = output
