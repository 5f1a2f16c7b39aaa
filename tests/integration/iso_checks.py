"""Checker functions applied alike to the base ISO and to our output."""

from __future__ import annotations

import hashlib
from pathlib import Path

from isobuild.iso import md5sums, partition_table
from isobuild.iso.boot_records import BootRecords, ElToritoImage, parse_as_mkisofs, parse_plain
from isobuild.iso.source import BaseIsoFacts, SourceIso, check_live_server
from isobuild.iso.xorriso import RealXorriso, split_report


def reopen(iso: Path) -> BaseIsoFacts:
    """pycdlib opens it and it passes the 24.04 live-server check."""
    with SourceIso(iso) as source:
        return check_live_server(source)


def boot_records(iso: Path) -> tuple[BootRecords, list[ElToritoImage]]:
    plain, mkisofs = split_report(RealXorriso().report(iso))
    return parse_as_mkisofs(mkisofs), parse_plain(plain)


def esp_bytes(iso: Path) -> bytes:
    """The appended EFI System Partition, located through the image's own GPT."""
    esp = partition_table.read(iso).esp
    assert esp is not None, f"{iso}: no ESP in the GPT"
    with iso.open("rb") as handle:
        handle.seek(esp.first * partition_table.SECTOR)
        return handle.read(esp.size * partition_table.SECTOR)


def md5_mismatches(iso: Path) -> list[str]:
    """Entries of md5sum.txt whose file is missing or differs (what casper-md5check does)."""
    problems = []
    with SourceIso(iso) as source:
        listed = md5sums.parse(source.read_text("/md5sum.txt"))
        for path, expected in listed.items():
            if not source.exists(path):
                problems.append(f"{path}: missing")
                continue
            actual = hashlib.md5(source.read_bytes(path), usedforsecurity=False).hexdigest()
            if actual != expected:
                problems.append(f"{path}: md5 {actual}, listed {expected}")
    return problems


def unlisted_files(iso: Path) -> list[str]:
    """Regular files md5sum.txt does not cover (besides the ones it must not list)."""
    with SourceIso(iso) as source:
        listed = set(md5sums.parse(source.read_text("/md5sum.txt")))
        found: list[str] = []
        pending = ["/"]
        while pending:
            for entry in source.list_dir(pending.pop()):
                if entry.is_symlink:
                    continue
                if entry.is_dir:
                    pending.append(entry.path)
                elif entry.path not in listed:
                    found.append(entry.path)
    skip = {*md5sums.EXCLUDED, md5sums.MD5SUM_PATH}
    return sorted(p for p in found if p not in skip)
