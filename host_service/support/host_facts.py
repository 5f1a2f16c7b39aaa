"""The host and appliance parts of the support bundle: facts from /proc and files, the
appliance's settings and state, k3s' files, and the units' journals. No cluster needed."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from host_service.errors import ServiceError
from host_service.host import LinuxHost, kernel_clock_state, synchronized
from host_service.intent import IntentStore, with_password
from host_service.settings import Settings, rooted
from host_service.support.archive import Item
from host_service.support.journal import Journal, JournalError
from host_service.support.redact import scrub_document

UNITS = ("appliance-setup.service", "appliance-console-banner.service", "k3s.service")
K3S_STORAGE = "/var/lib/rancher/k3s/storage"
# File systems whose free space is worth showing (a network mount could hang statvfs).
LOCAL_FS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "tmpfs", "overlay", "zfs", "f2fs"}
)
# State files that carry no secret by construction (the redactor still reads them). Left
# out on purpose: setup-token, session-key, setup-inputs.json (proxy password; its public
# form is collected instead), host-service.lock and support/ (earlier bundles).
STATE_FILES = (
    "bootstrap-state.json",
    "bootstrap-state.json.corrupt-*",
    "release-selection.json",
    "storage-verified.json",
    "release/*.json",
    "values/*.yaml",
    "update/*.json",
    "update/*/*.json",
)
STATE_FILE_LIMIT = 4 * 1024 * 1024
# What a state "file" that is none is, for the manifest.
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _file(path: Path, name: str, *, limit: int | None = None) -> Item:
    how = f"file {path}"
    try:
        return Item(name, how, data=path.read_bytes(), limit=limit)
    except FileNotFoundError:
        return Item(name, how, skipped="not present")
    except OSError as exc:
        return Item(name, how, error=f"{path}: {exc.strerror or exc}")


def _state_file(state: Path, path: Path, name: str) -> Item:
    """A file of the state directory, collected only when it is a regular file there: a
    symbolic link (or a file below a linked directory) may lead anywhere on the host."""
    how = f"file {path}"
    below = [p for p in (path, *path.parents) if p.is_relative_to(state) and p != state]
    linked = next((p for p in below if p.is_symlink()), None)
    if linked is not None:
        try:
            target = f" to {linked.readlink()}"
        except OSError:
            target = ""
        where = "a symbolic link" if linked == path else f"below the symbolic link {linked}"
        return Item(
            name,
            how,
            skipped=f"{where}{target}: not followed (only regular files of {state} are collected)",
        )
    try:
        kind = stat.S_IFMT(path.lstat().st_mode)
    except FileNotFoundError:
        return Item(name, how, skipped="not present")
    except OSError as exc:
        return Item(name, how, error=f"{path}: {exc.strerror or exc}")
    if kind != stat.S_IFREG:
        what = _KINDS.get(kind, "not a regular file")
        return Item(name, how, skipped=f"{what}: only regular files are collected")
    return _file(path, name, limit=STATE_FILE_LIMIT)


def _text(name: str, how: str, produce: Callable[[], str]) -> Item:
    try:
        return Item(name, how, data=produce().encode("utf-8", "surrogateescape"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return Item(name, how, error=f"{type(exc).__name__}: {exc}")


def _proc_files(proc: Path, *names: str) -> str:
    parts = []
    for name in names:
        try:
            parts.append(f"== {proc / name}\n{(proc / name).read_text(errors='replace')}")
        except OSError as exc:
            parts.append(f"== {proc / name}\n(unreadable: {exc.strerror or exc})\n")
    return "\n".join(parts)


def _disks(proc: Path, extra: list[Path]) -> str:
    lines = [f"{'mount':40} {'type':8} {'size':>14} {'free':>14} {'used%':>6}"]
    seen: set[str] = set()
    targets: list[tuple[str, str]] = []
    for line in (proc / "self/mounts").read_text(errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] in LOCAL_FS:
            targets.append((fields[1].replace("\\040", " "), fields[2]))
    targets += [(str(p), "(path)") for p in extra]
    for target, kind in targets:
        if target in seen:
            continue
        seen.add(target)
        try:
            st = os.statvfs(target)
        except OSError as exc:
            lines.append(f"{target:40} {kind:8} (statvfs failed: {exc.strerror})")
            continue
        size, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        used = 100 * (size - free) / size if size else 0.0
        lines.append(f"{target:40} {kind:8} {size:>14} {free:>14} {used:>5.1f}%")
    return "\n".join(lines) + "\n"


def _free(path: Path) -> str:
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return f"{path}: statvfs failed: {exc.strerror or exc}\n"
    size, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    return f"{path}: {size} bytes, {free} bytes free\n"


def _listing(directory: Path) -> str:
    """Names, modes and sizes below ``directory`` (no contents), not crossing mounts."""
    lines = []
    try:
        device = directory.stat().st_dev
    except OSError as exc:
        return f"{directory}: {exc.strerror or exc}\n"
    for current, dirs, files in os.walk(directory):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if (here / d).lstat().st_dev == device)
        for name in sorted(files) + [f"{d}/" for d in dirs]:
            path = here / name.rstrip("/")
            try:
                st = path.lstat()
            except OSError:
                continue
            rel = path.relative_to(directory).as_posix() + ("/" if name.endswith("/") else "")
            lines.append(f"{stat.filemode(st.st_mode)} {st.st_size:>12} {rel}")
        if len(lines) > 5000:
            lines.append("... (listing cut at 5000 entries)")
            break
    return "\n".join(lines) + "\n"


def _time_sync(settings: Settings) -> str:
    """The clock and systemd-timesyncd's view of it (files only: no program is run)."""
    root = settings.paths.root
    lines = [f"now (UTC): {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"]
    synced = rooted(root, "/run/systemd/timesync/synchronized")
    lines.append(f"{synced}: {'present (synchronized)' if synced.exists() else 'absent'}")
    state = kernel_clock_state()
    kernel = {None: "cannot be asked", True: "synchronized", False: "not synchronized"}
    lines.append(f"kernel (adjtimex state {state}): {kernel[synchronized(state)]}")
    clock = rooted(root, "/var/lib/systemd/timesync/clock")
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.stat().st_mtime))
        lines.append(f"{clock}: last synchronization {stamp}")
    except OSError:
        lines.append(f"{clock}: absent")
    for name in ("/etc/systemd/timesyncd.conf", "/etc/chrony/chrony.conf"):
        path = rooted(root, name)
        if path.exists():
            lines.append(f"== {path}\n{path.read_text(errors='replace')}")
    return "\n".join(lines) + "\n"


def _network(proc: Path) -> str:
    addresses = LinuxHost(proc).addresses()
    return (
        "addresses: " + (", ".join(addresses) or "(none)") + "\n\n"
        + _proc_files(proc, "net/route", "net/ipv6_route", "net/dev")
    )  # fmt: skip


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong with a YAML file, and where; never the snippet of the file PyYAML's own
    message quotes (a line of a kubeconfig or k3s' config may be a credential)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def _yaml_scrubbed(path: Path, name: str) -> Item:
    how = f"file {path} (secret-named keys blanked)"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Item(name, how, skipped="not present")
    except yaml.YAMLError as exc:
        return Item(name, how, error=f"{path}: not YAML: {_yaml_problem(exc)}")
    except (OSError, ValueError) as exc:
        return Item(name, how, error=str(exc))
    text = yaml.safe_dump(scrub_document(document), sort_keys=True)
    return Item(name, how, data=text.encode())


def _env_file(path: Path, name: str) -> Item:
    """``KEY=value`` lines with any URL's credentials replaced."""
    how = f"file {path} (URL credentials removed)"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return Item(name, how, skipped="not present")
    except OSError as exc:
        return Item(name, how, error=str(exc))
    out = []
    for line in lines:
        key, sep, value = line.partition("=")
        out.append(f"{key}{sep}{with_password(value, None) if '://' in value else value}")
    return Item(name, how, data=("\n".join(out) + "\n").encode())


def _kind(value: object) -> str:
    """What a YAML value is, for a message that must not quote it."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return "empty" if value is None else f"a {type(value).__name__}"


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {_kind(value)}")
    return value


def _entries(document: dict[Any, Any], key: str) -> Iterator[tuple[str, dict[Any, Any]]]:
    """``(where, entry)`` for each mapping in the list at ``key``."""
    value = document.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        raise ValueError(f"{key}: expected a list, got {_kind(value)}")
    for i, entry in enumerate(value):
        yield f"{key}[{i}]", _mapping(entry, f"{key}[{i}]")


def kubeconfig_outline(document: object) -> tuple[list[str], list[str]]:
    """The servers of a parsed kubeconfig and, per user, the kinds of credential it holds;
    ValueError naming the first key without a kubeconfig's shape (never a value)."""
    top = _mapping(document, "the top level")
    servers = []
    for where, entry in _entries(top, "clusters"):
        server = _mapping(entry.get("cluster"), f"{where}.cluster").get("server")
        if not isinstance(server, str | None):
            raise ValueError(f"{where}.cluster.server: expected a URL, got {_kind(server)}")
        servers.append(server or "(none)")
    users = []
    for where, entry in _entries(top, "users"):
        kinds = _mapping(entry.get("user"), f"{where}.user").keys()
        if not all(isinstance(k, str) for k in kinds):
            raise ValueError(f"{where}.user: expected names of credentials as its keys")
        users.append(f"{entry.get('name')}: {', '.join(sorted(kinds))}")
    return servers, users


def _kubeconfig_summary(path: Path, name: str) -> Item:
    """Where the kubeconfig points and its mode; never its credentials."""
    how = f"{path}: servers and mode only"
    damaged = "the summary is left out (k3s writes the file again when it starts)"
    try:
        st = path.stat()
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Item(name, "kubeconfig", skipped="no kubeconfig yet")
    except OSError as exc:
        return Item(name, how, error=f"{path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        return Item(name, how, error=f"{path}: not UTF-8 text; {damaged}")
    except yaml.YAMLError as exc:
        return Item(name, how, error=f"{path}: not YAML: {_yaml_problem(exc)}; {damaged}")
    try:
        servers, users = kubeconfig_outline(document)
    except ValueError as exc:
        return Item(name, how, error=f"{path}: not a kubeconfig: {exc}; {damaged}")
    text = (
        f"path: {path}\nmode: {stat.filemode(st.st_mode)} ({st.st_mode & 0o777:04o})\n"
        f"servers: {', '.join(servers)}\ncredential kinds (values never collected): "
        f"{'; '.join(users)}\n"
    )
    return Item(name, how, data=text.encode("utf-8", "surrogateescape"))


def host_items(settings: Settings, proc: Path) -> Iterator[Item]:
    paths = settings.paths
    storage = rooted(paths.root, K3S_STORAGE)
    os_release = rooted(paths.root, "/etc/os-release")
    if not os_release.exists():
        os_release = rooted(paths.root, "/usr/lib/os-release")
    yield _file(os_release, "host/os-release")
    yield _text(
        "host/kernel.txt",
        f"{proc}/version, uname",
        lambda: _proc_files(proc, "version") + f"\nuname: {' '.join(os.uname())}\n",
    )
    yield _text(
        "host/uptime-load.txt",
        f"{proc}/uptime, {proc}/loadavg",
        lambda: _proc_files(proc, "uptime", "loadavg"),
    )
    yield _text("host/memory.txt", f"{proc}/meminfo", lambda: _proc_files(proc, "meminfo"))
    yield _text("host/mounts.txt", f"{proc}/self/mounts", lambda: _proc_files(proc, "self/mounts"))
    yield _text(
        "host/disks.txt",
        "statvfs of local mounts, the state and k3s storage directories",
        lambda: _disks(proc, [paths.state, storage]),
    )
    yield _text(
        "host/network.txt", f"{proc}/net (addresses, routes, links)", lambda: _network(proc)
    )
    for name, path in (
        ("host/resolv.conf", rooted(paths.root, "/etc/resolv.conf")),
        ("host/resolved-resolv.conf", rooted(paths.root, "/run/systemd/resolve/resolv.conf")),
        ("host/hosts", rooted(paths.root, "/etc/hosts")),
    ):
        yield _file(path, name)
    yield _text("host/time.txt", "clock, timesyncd state files", lambda: _time_sync(settings))


def appliance_items(settings: Settings) -> Iterator[Item]:
    paths = settings.paths
    yield _file(paths.build_info, "appliance/build-info.json")
    yield _file(paths.payload_manifest, "appliance/payload-manifest.json")
    intent = None
    try:
        intent = IntentStore(paths.intent_file).load()
    except OSError as exc:
        error = f"{paths.intent_file}: {exc.strerror or exc}"
        yield Item("appliance/setup.json", f"file {paths.intent_file}", error=error)
    except ServiceError as exc:  # damaged or edited by hand: the message names file and fault
        yield Item("appliance/setup.json", f"file {paths.intent_file}", error=exc.message)
    else:
        public: dict[str, Any] | None = intent.public() if intent else None
        yield Item(
            "appliance/setup.json",
            f"file {paths.intent_file}, public fields only (the proxy without credentials)",
            data=(json.dumps({"setup": public}, indent=1) + "\n").encode(),
        )
    yield _text(
        "appliance/state-files.txt",
        f"names, modes and sizes under {paths.state} (no contents)",
        lambda: _listing(paths.state),
    )
    for pattern in STATE_FILES:
        for path in sorted(paths.state.glob(pattern)):
            rel = path.relative_to(paths.state).as_posix()
            yield _state_file(paths.state, path, f"appliance/state/{rel}")
    yield _yaml_scrubbed(paths.k3s_config, "k3s/config.yaml")
    yield _file(paths.k3s_unit, "k3s/k3s.service")
    yield _env_file(paths.k3s_env, "k3s/k3s.service.env")
    yield _kubeconfig_summary(paths.kubeconfig, "k3s/kubeconfig-summary.txt")
    storage = rooted(paths.root, K3S_STORAGE)
    yield _text(
        "storage/local-path-host.txt",
        f"free space and volume directories under {storage} (no contents)",
        lambda: _free(storage) + "\n" + _listing(storage),
    )


def journal_items(journal: Journal, *, hours: float, max_bytes: int) -> Iterator[Item]:
    for unit in UNITS:
        how = f"journal of {unit}, last {hours:g} h, at most {max_bytes} bytes (newest kept)"
        try:
            text = journal.read(unit, since_hours=hours, max_bytes=max_bytes)
        except JournalError as exc:
            yield Item(f"journal/{unit}.log", how, error=str(exc))
            continue
        yield Item(f"journal/{unit}.log", how, data=text.encode("utf-8", "surrogateescape"))
