"""Edits to the ISO's grub.cfg and loopback.cfg (pure text transforms)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Both escaped for GRUB: in grub.cfg `;` separates commands, so the NoCloud seed needs `\;`.
AUTOINSTALL_ARGS = ("autoinstall", r"ds=nocloud\;s=/cdrom/nocloud/")
BEGIN = "# >>> isobuild: menu settings and installed-system check"
END = "# <<< isobuild"
INSTALLED_ID = "isobuild-installed"

_LINUX = re.compile(r"^(?P<indent>\s*)linux(?P<sep>\s+)(?P<kernel>\S+)(?P<args>.*)$")
_MENUENTRY = re.compile(r"""^\s*menuentry\s+(?:"([^"]*)"|'([^']*)')""")
_TOP_SETTING = re.compile(r"^set (timeout|default)=.*$")


class GrubEditError(ValueError):
    """The menu does not have what the edit needs."""


@dataclass(frozen=True, kw_only=True)
class MenuEntry:
    title: str
    kernel: str | None
    args: str | None  # the kernel command line after the kernel path


def _is_installer_kernel(kernel: str) -> bool:
    return kernel.startswith("/casper/")


def add_kernel_args(cfg: str, args: Sequence[str]) -> str:
    """Add ``args`` to every installer ``linux /casper/...`` line, before ``---``.

    Idempotent (arguments already present are not repeated); ``linux16`` and entries
    that do not boot a casper kernel are untouched.
    """
    out = []
    for line in cfg.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        match = _LINUX.match(body)
        if match is None or not _is_installer_kernel(match["kernel"]):
            out.append(line)
            continue
        tokens = match["args"].split()
        missing = [a for a in args if a not in tokens]
        if not missing:
            out.append(line)
            continue
        if "---" in tokens:
            cut = tokens.index("---")
            tokens = [*tokens[:cut], *missing, *tokens[cut:]]
        else:
            tokens = [*tokens, *missing]
        out.append(
            f"{match['indent']}linux{match['sep']}{match['kernel']} {' '.join(tokens)}{ending}"
        )
    return "".join(out)


def menu_entries(cfg: str) -> list[MenuEntry]:
    """Every ``menuentry`` in file order, with its ``linux`` line if it has one."""
    entries: list[MenuEntry] = []
    title: str | None = None
    kernel = args = None
    depth = 0
    for raw in cfg.splitlines():
        line = raw.strip()
        start = _MENUENTRY.match(raw)
        if start and title is None:
            title = start.group(1) if start.group(1) is not None else start.group(2)
            kernel = args = None
            depth = line.count("{") - line.count("}")
            if depth <= 0 and "{" in line:  # a one-line entry: `menuentry "x" { fwsetup }`
                entries.append(MenuEntry(title=title, kernel=None, args=None))
                title = None
            continue
        if title is None:
            continue
        match = _LINUX.match(raw)
        if match and kernel is None:
            kernel, args = match["kernel"], match["args"].strip()
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            entries.append(MenuEntry(title=title, kernel=kernel, args=args))
            title = None
    return entries


def installer_entries(cfg: str) -> list[MenuEntry]:
    return [e for e in menu_entries(cfg) if e.kernel is not None and _is_installer_kernel(e.kernel)]


def _installed_check(marker: str, name: str) -> list[str]:
    # GRUB searches every disk; the ISO never carries the marker. /boot/<marker> is found
    # on a root filesystem, /<marker> on a separate /boot partition (Ubuntu's LVM layout).
    return [
        "insmod part_gpt",
        "insmod part_msdos",
        "insmod ext2",
        "insmod lvm",
        "set isobuild_root=",
        "set isobuild_cfg=",
        f"search --no-floppy --file --set=isobuild_root /boot/{marker}",
        'if [ -n "$isobuild_root" ]; then',
        "\tset isobuild_cfg=/boot/grub/grub.cfg",
        "else",
        f"\tsearch --no-floppy --file --set=isobuild_root /{marker}",
        '\tif [ -n "$isobuild_root" ]; then set isobuild_cfg=/grub/grub.cfg; fi',
        "fi",
        'if [ -n "$isobuild_cfg" ]; then',
        "\texport isobuild_root isobuild_cfg",
        f"\tset default={INSTALLED_ID}",
        f'\tmenuentry "Boot the installed {name} (found {marker})" --id {INSTALLED_ID} {{',
        "\t\tset root=$isobuild_root",
        "\t\tconfigfile ($isobuild_root)$isobuild_cfg",
        "\t}",
        "fi",
    ]


def configure_menu(
    cfg: str, *, timeout: int, default: int, installed_marker: str, name: str
) -> str:
    """Set the timeout and default entry, and boot an installed system when one is found.

    ``default`` indexes the installer entries (0: "Try or Install"); it becomes the
    entry's title so the installed-system entry, listed first when present, does not
    shift it. The settings block replaces the file's own ``set timeout``/``set default``
    lines and any earlier block of ours (idempotent).
    """
    cfg = _strip_block(cfg)
    installers = installer_entries(cfg)
    if not installers:
        raise GrubEditError("grub.cfg has no menu entry that boots /casper/vmlinuz")
    if default >= len(installers):
        titles = ", ".join(f"{i}: {e.title}" for i, e in enumerate(installers))
        raise GrubEditError(
            f"default entry {default} does not exist; the installer entries are {titles}"
        )
    title = installers[default].title.replace('"', '\\"')
    kept = [line for line in cfg.splitlines() if not _TOP_SETTING.match(line)]
    block = [
        BEGIN,
        f"set timeout={timeout}",
        f'set default="{title}"',
        *_installed_check(installed_marker, name),
        END,
    ]
    return "\n".join([*block, *kept]) + "\n"


def _strip_block(cfg: str) -> str:
    if BEGIN not in cfg:
        return cfg
    head, _, rest = cfg.partition(BEGIN)
    _, _, tail = rest.partition(END + "\n")
    return head + tail
