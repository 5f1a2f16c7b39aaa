"""Filesystem types and labels that udev did not record, probed with blkid.

``devices`` reads them from udev's database. Without udev (a container, a minimal or live
system) there is none, and the confirmation prompt would show a stick's partitions without
their filesystems and labels, which is how a user tells their backup stick from the one
to overwrite. So where udev said nothing about the disk or a partition, ``blkid --probe``
(libblkid reading the superblocks itself, read-only) is asked. Best effort: a device blkid
cannot read (not root) or finds nothing on stays as udev left it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from isobuild.errors import ToolError
from isobuild.flash.devices import Disk, Partition, udev_text
from isobuild.run import Runner, run

log = logging.getLogger(__name__)

PROBE_SECONDS = 10  # a dying stick can hang a read; the prompt must not wait for ever

Probe = Callable[[Path], Mapping[str, str]]
_Described = TypeVar("_Described", Disk, Partition)


def parse_udev_output(text: str) -> dict[str, str]:
    """``blkid --output udev`` lines (``ID_FS_LABEL_ENC=my\\x20stick``) as properties (pure)."""
    props = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("ID_"):
            props[key] = value
    return props


def blkid(device: Path, *, runner: Runner = run) -> dict[str, str]:
    """What ``blkid --probe`` finds on ``device``; empty when nothing, or it cannot look."""
    program = shutil.which("blkid")
    if program is None:
        return {}
    try:
        done = runner([program, "--probe", "--output", "udev", device], capture=True,
                      check=False, timeout=PROBE_SECONDS)  # fmt: skip
    except ToolError as exc:  # timed out
        log.debug("%s: %s", device, exc)
        return {}
    if done.returncode != 0:  # 2: nothing found; others: cannot read it
        log.debug("%s: blkid exited with %d: %s", device, done.returncode, done.stderr.strip())
        return {}
    return parse_udev_output(done.stdout)


def with_filesystems(disk: Disk, probe: Probe = blkid) -> Disk:
    """``disk``, with the filesystem and label of each part udev did not describe probed."""
    parts = tuple(
        part if part.fstype or part.label else _described(part, probe(Path("/dev") / part.name))
        for part in disk.partitions
    )
    if not (disk.fstype or parts):  # a filesystem on the whole disk, no table
        disk = _described(disk, probe(disk.path))
    return dataclasses.replace(disk, partitions=parts)


def _described(thing: _Described, props: Mapping[str, str]) -> _Described:
    """``thing`` with what blkid found, read as ``devices`` reads udev's properties."""
    fstype = props.get("ID_FS_TYPE") or None
    label = udev_text(props, "ID_FS_LABEL") or udev_text(props, "ID_PART_ENTRY_NAME")
    if fstype is None and label is None:
        return thing
    return dataclasses.replace(thing, fstype=fstype, label=label)
