"""k3s: binary and image archives from the payload, config.yaml, the unit, API and node ready."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from host_service import atomic, k3s_files
from host_service.command import CommandError
from host_service.kube import KubeError, is_true
from host_service.settings import rooted
from host_service.steps.context import StepContext, StepFailed
from host_service.systemd import SystemdError

IMAGE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.lz4", ".tar.bz2")

# (path, size, mtime) -> sha256: the archives are hundreds of MB; hash each version once.
_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _manifest_sha256(ctx: StepContext, installed: Path) -> str | None:
    """The sha256 the payload manifest records for the file installed at ``installed``."""
    paths = ctx.settings.paths
    try:
        manifest = json.loads(paths.payload_manifest.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    for entry in manifest.get("files", []):
        install = entry.get("install") if isinstance(entry, dict) else None
        if install and rooted(paths.root, install) == installed:
            return str(entry.get("sha256"))
    return None


def installed_problems(ctx: StepContext) -> list[str]:
    """What is wrong with the binary and image archives the installer put in place."""
    paths = ctx.settings.paths
    problems: list[str] = []
    binary = paths.k3s_binary
    if not binary.is_file():
        problems.append(f"{binary}: missing")
    elif not os.access(binary, os.X_OK):
        problems.append(f"{binary}: not executable")
    else:
        expected = _manifest_sha256(ctx, binary)
        if expected and sha256_of(binary) != expected:
            problems.append(f"{binary}: sha256 differs from the payload manifest")
    archives = ctx.settings.k3s.image_archives
    if not archives:
        present = paths.k3s_images.is_dir() and any(
            p.name.endswith(IMAGE_SUFFIXES) for p in paths.k3s_images.iterdir()
        )
        if not present:
            problems.append(f"{paths.k3s_images}: no image archives")
    for archive in archives:
        path = paths.k3s_images / archive.file
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif sha256_of(path) != archive.sha256:
            problems.append(f"{path}: sha256 differs from build-info.json")
    return problems


def _wanted_files(ctx: StepContext) -> dict[Path, tuple[str, int]]:
    paths = ctx.settings.paths
    return {
        paths.k3s_config: (k3s_files.render_config(ctx.settings), 0o600),
        paths.k3s_unit: (k3s_files.render_unit(), 0o644),
        paths.k3s_env: (k3s_files.render_env(ctx.intent), 0o600),
    }


def _text_matches(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except (FileNotFoundError, UnicodeDecodeError):
        return False


def _node_ready(ctx: StepContext) -> tuple[str | None, str]:
    try:
        nodes = ctx.kube.list("nodes")
    except KubeError as exc:
        return None, f"listing nodes: {exc.message}"
    if not nodes:
        return None, "waiting for the node to register"
    for node in nodes:
        if is_true(node, "Ready"):
            return str(node.get("metadata", {}).get("name", "?")), ""
    return None, "waiting for the node to become Ready"


def probe(ctx: StepContext) -> bool:
    if installed_problems(ctx):
        return False
    if not all(_text_matches(p, text) for p, (text, _) in _wanted_files(ctx).items()):
        return False
    try:
        if ctx.systemd.unit_state(k3s_files.UNIT).active != "active":
            return False
        if ctx.kube.readyz() != "ok":
            return False
    except (SystemdError, KubeError):
        return False
    name, _ = _node_ready(ctx)
    return name is not None and _kubeconfig_private(ctx)


def _kubeconfig_private(ctx: StepContext) -> bool:
    try:
        return ctx.settings.paths.kubeconfig.stat().st_mode & 0o077 == 0
    except FileNotFoundError:
        return False


def run(ctx: StepContext) -> None:
    paths = ctx.settings.paths
    ctx.report("checking the k3s binary and image archives")
    problems = installed_problems(ctx)
    if problems:
        raise StepFailed(
            f"the installed k3s payload is incomplete: {problems[0]}",
            cause="the installation did not finish copying the payload, or a file was "
            "damaged or replaced afterwards",
            next_step="reinstall from the appliance ISO (the installer verifies every file), "
            "then retry",
            output="\n".join(problems),
        )
    count = len(ctx.settings.k3s.image_archives)
    ctx.report("binary and image archives verified", detail=f"{count} image archive(s) verified")

    try:
        version = ctx.k3s.version(paths.k3s_binary)
    except CommandError as exc:
        raise StepFailed(
            f"{paths.k3s_binary} does not run: {exc.message}",
            cause="the k3s binary in the payload is not a working k3s for this machine "
            "(a stand-in payload, a damaged copy or the wrong architecture)",
            next_step="build the ISO with the real pinned k3s artifacts and reinstall",
            output=exc.output,
        ) from exc
    wanted = ctx.settings.k3s.version
    if wanted and version != wanted:
        raise StepFailed(
            f"{paths.k3s_binary} is k3s {version}, the build pinned {wanted}",
            cause="the binary was replaced after installation",
            next_step="reinstall from the appliance ISO, then retry",
        )
    ctx.report(f"k3s {version} installed", detail=f"k3s {version}")

    unit_changed = False
    config_changed = False
    for path, (text, mode) in _wanted_files(ctx).items():
        if not _text_matches(path, text):
            ctx.report(f"writing {path.name}")
            atomic.write_text(path, text, mode=mode)
            unit_changed |= path in (paths.k3s_unit, paths.k3s_env)
            config_changed = True
    try:
        state = ctx.systemd.unit_state(k3s_files.UNIT).active
        if unit_changed or state != "active":
            # Also after an interrupted run that wrote the unit but never reloaded systemd.
            ctx.systemd.daemon_reload()
        if state == "active" and config_changed:
            ctx.report("restarting k3s for the new configuration")
            ctx.systemd.restart(k3s_files.UNIT)
        elif state != "active":
            ctx.report("starting k3s")
            ctx.systemd.enable_now(k3s_files.UNIT)
    except SystemdError as exc:
        raise StepFailed(
            f"systemd could not start k3s: {exc.message}",
            cause="the k3s unit is invalid or systemd refused it",
            next_step="check `systemctl status k3s` and `journalctl -u k3s`, then retry",
            output=exc.output,
        ) from exc

    ctx.poll(
        lambda: _api_ready(ctx),
        timeout=ctx.settings.timeouts.k3s_ready,
        on_timeout=lambda last: _not_ready(
            ctx, f"the Kubernetes API did not become ready ({last})"
        ),
    )
    if not _kubeconfig_private(ctx):
        # k3s honours write-kubeconfig-mode; an older file from before the config is fixed here.
        paths.kubeconfig.chmod(0o600)
    ctx.report("API ready", detail="Kubernetes API ready")
    node = ctx.poll(
        lambda: _node_ready(ctx),
        timeout=ctx.settings.timeouts.node_ready,
        on_timeout=lambda last: _not_ready(ctx, f"the node did not become Ready ({last})"),
    )
    ctx.report(f"node {node} Ready", detail=f"node {node} Ready")


def _api_ready(ctx: StepContext) -> tuple[bool | None, str]:
    try:
        unit = ctx.systemd.unit_state(k3s_files.UNIT)
    except SystemdError as exc:
        return None, f"systemd: {exc.message}"
    if unit.crash_looping:
        standin = ctx.settings.standin
        raise StepFailed(
            "k3s.service failed to start"
            + (f" (it exited and was restarted {unit.restarts} times)" if unit.restarts else ""),
            cause="this appliance was built with stand-in k3s artifacts, which cannot run a cluster"
            if standin
            else "k3s exited during start-up; the journal below says why",
            next_step="build the ISO with the real pinned k3s artifacts and reinstall"
            if standin
            else "read `journalctl -u k3s`, fix the cause (disk, network, config), then retry",
            output=ctx.systemd.journal(k3s_files.UNIT),
        )
    if not ctx.settings.paths.kubeconfig.exists():
        return None, f"waiting for k3s ({unit.active}) to write its kubeconfig"
    try:
        answer = ctx.kube.readyz()
    except KubeError as exc:
        return None, f"waiting for the API: {exc.message}"
    return (True, "") if answer == "ok" else (None, f"API /readyz says {answer[:80]}")


def _not_ready(ctx: StepContext, message: str) -> StepFailed:
    journal = ctx.systemd.journal(k3s_files.UNIT)
    return StepFailed(
        message,
        cause="k3s is running but not healthy: image import, network or resource trouble",
        next_step="read `journalctl -u k3s` and `k3s kubectl get nodes -o wide`, then retry",
        output=journal,
    )
