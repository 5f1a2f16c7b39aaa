#!/usr/bin/env python3
"""install-payload: verify the appliance payload on the medium and install it into a target.

Shipped on the ISO as ``/appliance/install-payload`` and run by the autoinstall
late-commands in the installer, with the new system mounted at ``/target``:

    install-payload verify --medium /cdrom/appliance
    install-payload install --medium /cdrom/appliance --target /target
    install-payload finish --medium /cdrom/appliance --target /target --marker /boot/NAME-installed

It reads ``payload-manifest.json`` (every file with its sha256, size, mode and install
path), so all decisions were made at build time; this script only checks and copies.
Python 3 standard library only: it runs in the live installer and on stock Ubuntu.
Exit codes: 0 ok, 1 a check or copy failed, 2 bad usage or manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = "payload-manifest.json"
SCHEMA = "alga.appliance.payload-manifest/v1"
CHUNK = 1 << 20


class Refused(Exception):
    """A check failed; the message says what and where."""


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the payload directory
    sha256: str
    size: int
    mode: int
    install: str | None  # absolute path on the installed system, or None (medium only)


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    build_id: str
    standin: bool
    directories: tuple[tuple[str, int], ...]  # (absolute path, mode) created before files
    files: tuple[Entry, ...]
    manifest_install: str  # where the manifest itself is kept on the installed system
    raw: bytes


def _say(text: str, *, error: bool = False) -> None:
    """One line for the installer log (curtin keeps late-command output)."""
    stream = sys.stderr if error else sys.stdout
    stream.write(f"install-payload: {text}\n")
    stream.flush()


def _fail_usage(message: str) -> SystemExit:
    _say(f"error: {message}", error=True)
    return SystemExit(2)


def _absolute(text: Any, where: str) -> str:
    path = PurePosixPath(str(text))
    if not path.is_absolute() or ".." in path.parts:
        raise _fail_usage(f"{where}: expected an absolute path without '..', got {text!r}")
    return str(path)


def load_manifest(medium: Path) -> Manifest:
    path = medium / MANIFEST
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except FileNotFoundError:
        raise _fail_usage(f"{path}: not found; is the appliance medium mounted?") from None
    except (OSError, ValueError) as exc:
        raise _fail_usage(f"{path}: unreadable: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise _fail_usage(f"{path}: not a {SCHEMA} document")
    files = []
    for i, item in enumerate(data.get("files", [])):
        rel = PurePosixPath(str(item["path"]))
        if rel.is_absolute() or ".." in rel.parts:
            raise _fail_usage(f"{path}: files[{i}].path: must be relative, got {item['path']!r}")
        install = item.get("install")
        files.append(
            Entry(
                path=str(rel),
                sha256=str(item["sha256"]),
                size=int(item["size"]),
                mode=int(str(item["mode"]), 8),
                install=None if install is None else _absolute(install, f"files[{i}].install"),
            )
        )
    directories = tuple(
        (_absolute(d["path"], f"directories[{i}].path"), int(str(d["mode"]), 8))
        for i, d in enumerate(data.get("directories", []))
    )
    return Manifest(
        name=str(data["name"]),
        version=str(data["version"]),
        build_id=str(data["build_id"]),
        standin=bool(data.get("standin", False)),
        directories=directories,
        files=tuple(files),
        manifest_install=_absolute(data["manifest_install"], "manifest_install"),
        raw=raw,
    )


def _hash(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check(entry: Entry, path: Path) -> str | None:
    try:
        sha256, size = _hash(path)
    except FileNotFoundError:
        return f"{path}: missing"
    except OSError as exc:
        return f"{path}: unreadable: {exc.strerror}"
    if size != entry.size:
        return f"{path}: {size} bytes, the manifest says {entry.size}"
    if sha256 != entry.sha256:
        return f"{path}: sha256 {sha256}, the manifest says {entry.sha256}"
    return None


def verify(manifest: Manifest, medium: Path) -> list[str]:
    """Every problem with the payload on the medium (empty when it is intact)."""
    problems = [p for e in manifest.files if (p := _check(e, medium / e.path)) is not None]
    listed = {e.path for e in manifest.files} | {MANIFEST}
    for item in sorted(medium.rglob("*")):
        rel = item.relative_to(medium).as_posix()
        if item.is_file() and rel not in listed:
            problems.append(f"{item}: not listed in {MANIFEST}")
    return problems


def under(target: Path, absolute: str) -> Path:
    """``absolute`` (a path on the installed system) inside the target root."""
    return target.joinpath(*PurePosixPath(absolute).parts[1:])


def _chown_root(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, 0, 0, follow_symlinks=False)


def _make_dirs(target: Path, absolute: str, mode: int | None = None) -> None:
    """Create ``absolute`` under ``target`` and missing parents (root-owned, 0755).

    ``mode`` applies to ``absolute`` itself, also when it exists already.
    """
    current = target
    for part in PurePosixPath(absolute).parts[1:]:
        current = current / part
        if current.is_symlink() or current.exists():
            continue
        current.mkdir()
        _chown_root(current)
        current.chmod(0o755)
    if mode is not None:
        current.chmod(mode)


def _copy_verified(entry: Entry, source: Path, dest: Path) -> None:
    """Copy to a temporary file beside ``dest``, check the bytes, then rename into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as src, os.fdopen(fd, "wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != entry.sha256 or size != entry.size:
            raise Refused(
                f"{source}: sha256 {digest.hexdigest()} ({size} bytes) while copying, the "
                f"manifest says {entry.sha256} ({entry.size} bytes)"
            )
        _chown_root(tmp)
        tmp.chmod(entry.mode)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def installable(manifest: Manifest) -> Iterator[Entry]:
    return (e for e in manifest.files if e.install is not None)


def install(manifest: Manifest, medium: Path, target: Path) -> int:
    if not target.is_dir():
        raise Refused(f"{target}: the target root does not exist")
    for absolute, mode in manifest.directories:
        _make_dirs(target, absolute, mode)
    count = 0
    for entry in installable(manifest):
        assert entry.install is not None
        dest = under(target, entry.install)
        _make_dirs(target, str(PurePosixPath(entry.install).parent))
        _copy_verified(entry, medium / entry.path, dest)
        count += 1
    return count


def finish(manifest: Manifest, target: Path, marker: str) -> None:
    """Check the installed files, keep the manifest, then write the installed marker."""
    problems = [
        p
        for e in installable(manifest)
        if e.install is not None and (p := _check(e, under(target, e.install))) is not None
    ]
    if problems:
        raise Refused(
            "installed files do not match the payload manifest:\n  " + "\n  ".join(problems)
        )
    kept = under(target, manifest.manifest_install)
    _make_dirs(target, str(PurePosixPath(manifest.manifest_install).parent))
    _write_atomic(kept, manifest.raw, 0o644)
    text = (
        f"name={manifest.name}\nversion={manifest.version}\nbuild_id={manifest.build_id}\n"
        f"standin={'true' if manifest.standin else 'false'}\n"
    )
    # Last of all: GRUB on the installer medium boots the disk once this file exists.
    _make_dirs(target, str(PurePosixPath(marker).parent))
    _write_atomic(under(target, marker), text.encode(), 0o644)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        _chown_root(tmp)
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install-payload", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("verify", "install", "finish"):
        sub = commands.add_parser(name)
        sub.add_argument("--medium", type=Path, required=True, help="the payload directory")
        if name != "verify":
            sub.add_argument("--target", type=Path, required=True, help="the target root")
        if name == "finish":
            sub.add_argument("--marker", required=True, help="absolute path of the marker")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.medium)
    label = f"{manifest.name} {manifest.version} (build {manifest.build_id})"
    try:
        if args.command == "verify":
            problems = verify(manifest, args.medium)
            if problems:
                raise Refused(f"{args.medium}: payload damaged:\n  " + "\n  ".join(problems))
            _say(f"{label}: {len(manifest.files)} files verified")
        elif args.command == "install":
            count = install(manifest, args.medium, args.target)
            _say(f"{label}: {count} files installed into {args.target}")
        else:
            marker = _absolute(args.marker, "--marker")
            finish(manifest, args.target, marker)
            _say(f"{label}: installed files verified, marker {marker}")
    except Refused as exc:
        _say(f"error: {exc}", error=True)
        return 1
    if manifest.standin:
        _say("note: this payload carries STAND-IN k3s/Flux artifacts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
