"""``reset-data``: back to "freshly installed", so no old data or credential mixes into the
next install.

The plan is computed first and shown as is; executing it deletes exactly what it lists. The
cluster goes first (the Flux source and Kustomization, so nothing is recreated, the
HelmReleases, the claims and their volumes, the application namespaces, the Flux secrets),
then the host (volume directories, every state file, the proxy in k3s' env file), then the
setup token is rotated. k3s, Flux, the payload and build-info are kept. A reset that stops
half-way leaves the host state in place and can simply be run again.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from host_service import atomic, console, k3s_files, manifests, setup_token
from host_service.command import CommandError
from host_service.errors import ServiceError
from host_service.kube import Kube, KubeError, Object
from host_service.manifests import HELMRELEASES, KUSTOMIZATIONS, OCI_REPOSITORIES
from host_service.runtime import Runtime
from host_service.settings import Settings, rooted
from host_service.support.host_facts import K3S_STORAGE
from host_service.systemd import SystemdError

MOUNTINFO = Path("/proc/self/mountinfo")
_OCTAL = re.compile(r"\\([0-7]{3})")  # mountinfo's escapes: \040 is a space
KEEP_IN_STATE = frozenset({"host-service.lock"})
CONFIRMATION = "RESET"


class ResetRefused(ServiceError):
    """The reset cannot be planned or done safely now; nothing (more) was deleted."""


@dataclass(frozen=True)
class ClusterDeletion:
    resource: str
    name: str
    namespace: str | None
    label: str  # what the operator reads
    detail: str = ""


@dataclass
class Plan:
    cluster: list[ClusterDeletion] = field(default_factory=list)
    volumes: list[tuple[Path, str]] = field(default_factory=list)  # host dir, what it holds
    files: list[Path] = field(default_factory=list)
    cluster_note: str | None = None
    env_has_proxy: bool = False
    namespaces: tuple[str, ...] = ()
    claimed_volumes: tuple[str, ...] = ()  # PersistentVolumes bound to the workloads' claims

    def lines(self) -> list[str]:
        out = ["reset-data will delete:"]
        out.append("  in the cluster:")
        if self.cluster_note:
            out.append(f"    (nothing: {self.cluster_note})")
        out += [f"    {d.label}" + (f" ({d.detail})" if d.detail else "") for d in self.cluster]
        out.append("  on this host:")
        out += [f"    {path}/ ({what})" for path, what in self.volumes]
        out += [f"    {path}" + ("/" if path.is_dir() else "") for path in self.files]
        out.append("and will:")
        out.append("    rotate the setup token (the new one is shown on the console only) and")
        out.append("    end every session")
        if self.env_has_proxy:
            out.append("    remove the proxy (and its credentials) from k3s' environment and")
            out.append("    restart k3s")
        out.append("kept: the payload, build-info.json, k3s and Flux (the bootstrap re-checks")
        out.append("them); setup starts from the beginning with new inputs and new secrets")
        return out


def _size(path: Path) -> int:
    total = 0
    with contextlib.suppress(OSError):
        device = path.lstat().st_dev
        for current, dirs, files in os.walk(path):
            here = Path(current)
            dirs[:] = [d for d in dirs if (here / d).lstat().st_dev == device]
            total += sum((here / f).lstat().st_size for f in files)
    return total


def _list(kube: Kube, resource: str, namespace: str | None) -> list[Object]:
    """Objects of ``resource``; none when the kind does not exist (Flux not installed)."""
    try:
        return kube.list(resource, namespace)
    except KubeError as exc:
        if "doesn't have a resource type" in exc.output or "NotFound" in exc.output:
            return []
        raise


def _name(obj: Object) -> str:
    return str(obj.get("metadata", {}).get("name"))


def _volume_path(pv: Object) -> str | None:
    spec = pv.get("spec", {})
    for key in ("hostPath", "local"):
        path = (spec.get(key) or {}).get("path")
        if path:
            return str(path)
    return None


def _plan_cluster(plan: Plan, settings: Settings, kube: Kube) -> set[Path]:
    """Fill in the cluster part; returns the host directories of the workloads' volumes."""
    ns = settings.namespaces
    storage = rooted(settings.paths.root, K3S_STORAGE)
    for resource, kind in ((KUSTOMIZATIONS, "Kustomization"), (OCI_REPOSITORIES, "OCIRepository")):
        for obj in _list(kube, resource, ns.flux):
            if _name(obj) == manifests.SOURCE_NAME:
                plan.cluster.append(
                    ClusterDeletion(resource, _name(obj), ns.flux, f"{kind} {ns.flux}/{_name(obj)}")
                )
    for hr in _list(kube, HELMRELEASES, ns.system):
        plan.cluster.append(
            ClusterDeletion(
                HELMRELEASES,
                _name(hr),
                ns.system,
                f"HelmRelease {ns.system}/{_name(hr)}",
                "Helm uninstalls its workloads",
            )
        )
    volumes = {
        str(pv.get("spec", {}).get("claimRef", {}).get("name")): pv
        for pv in _list(kube, "persistentvolumes", None)
        if pv.get("spec", {}).get("claimRef", {}).get("namespace") == ns.workloads
    }
    dirs: set[Path] = set()
    for pvc in _list(kube, "persistentvolumeclaims", ns.workloads):
        pv = volumes.get(_name(pvc))
        size = pvc.get("spec", {}).get("resources", {}).get("requests", {}).get("storage", "?")
        where = _volume_path(pv) if pv else None
        detail = f"{size}, volume {_name(pv) if pv else 'none'}" + (f" at {where}" if where else "")
        plan.cluster.append(
            ClusterDeletion(
                "persistentvolumeclaims",
                _name(pvc),
                ns.workloads,
                f"PersistentVolumeClaim {ns.workloads}/{_name(pvc)}",
                f"application data: {detail}",
            )
        )
    for claim, pv in sorted(volumes.items()):
        where = _volume_path(pv)
        if where:
            path = rooted(settings.paths.root, where)
            if path.is_relative_to(storage) and path != storage:
                dirs.add(path)
        plan.cluster.append(
            ClusterDeletion(
                "persistentvolumes",
                _name(pv),
                None,
                f"PersistentVolume {_name(pv)}",
                f"of claim {ns.workloads}/{claim}",
            )
        )
    plan.claimed_volumes = tuple(_name(pv) for pv in volumes.values())
    for namespace, what in (
        (ns.workloads, "the workloads, the generated Secret alga-appliance-secrets, everything"),
        (ns.system, "the values ConfigMaps and the release selection"),
    ):
        if kube.get("namespaces", namespace) is not None:
            count = len(_list(kube, "pods", namespace))
            plan.cluster.append(
                ClusterDeletion(
                    "namespaces",
                    namespace,
                    None,
                    f"Namespace {namespace}",
                    f"{what}; {count} pod(s)",
                )
            )
    plan.namespaces = tuple(d.name for d in plan.cluster if d.resource == "namespaces")
    for secret in (manifests.PROXY_SECRET, manifests.CA_SECRET):
        if kube.get("secrets", secret, ns.flux) is not None:
            plan.cluster.append(
                ClusterDeletion("secrets", secret, ns.flux, f"Secret {ns.flux}/{secret}")
            )
    return dirs


def make_plan(settings: Settings, kube: Kube) -> Plan:
    """What a reset deletes, read from reality; raises ResetRefused when the cluster that
    exists cannot be read (a partial reset would keep old secrets in it)."""
    plan = Plan()
    paths = settings.paths
    dirs: set[Path] = set()
    if not paths.kubeconfig.exists():
        plan.cluster_note = "k3s was never started here (no kubeconfig)"
    else:
        try:
            kube.readyz()
            dirs = _plan_cluster(plan, settings, kube)
        except (KubeError, CommandError) as exc:
            raise ResetRefused(
                f"the Kubernetes API is not reachable: {exc.message}",
                hint="start k3s (systemctl start k3s), wait for it, and run reset-data again; "
                "nothing was deleted",
            ) from exc
    storage = rooted(paths.root, K3S_STORAGE)
    with contextlib.suppress(OSError):
        # local-path names a volume's directory pvc-<uid>_<namespace>_<claim>.
        dirs |= {p for p in storage.glob(f"*_{settings.namespaces.workloads}_*") if p.is_dir()}
    plan.volumes = [(d, f"volume data, {_size(d)} bytes") for d in sorted(dirs) if d.exists()]
    with contextlib.suppress(FileNotFoundError):
        plan.files = sorted(p for p in paths.state.iterdir() if p.name not in KEEP_IN_STATE)
    try:
        env = paths.k3s_env.read_text(encoding="utf-8")
    except FileNotFoundError:
        env = ""
    plan.env_has_proxy = "PROXY=" in env
    return plan


def _wait_gone(
    kube: Kube, plan: Plan, timeout: float, poll: float, sleep: Callable[[float], None]
) -> None:
    waited = 0.0
    while True:
        left = [f"Namespace {n}" for n in plan.namespaces if kube.get("namespaces", n)]
        left += [
            f"PersistentVolume {v}"
            for v in plan.claimed_volumes
            if kube.get("persistentvolumes", v) is not None
        ]
        if not left:
            return
        if waited >= timeout:
            raise ResetRefused(
                f"still being deleted after {timeout:g} s: {', '.join(left)}",
                hint="a finalizer holds it (check `k3s kubectl get ns,pv`); run reset-data "
                "again once it is gone; the host state was not touched yet",
            )
        sleep(poll)
        waited += poll


def _mount_points(mountinfo: Path) -> list[Path]:
    """Every mount point of this mount namespace (``/proc/self/mountinfo``'s fifth field,
    its octal escapes undone); none where the file cannot be read."""
    try:
        lines = mountinfo.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(Path(_OCTAL.sub(lambda m: chr(int(m[1], 8)), fields[4])))
    return points


def check_removable(path: Path, *, mountinfo: Path = MOUNTINFO) -> None:
    """Refuse ``path`` when anything is mounted below it: a file system of its own (another
    device) or a bind mount (the same device, so only the mount table shows it). Deleting
    through either would delete what the mount shows, which is not the appliance's."""
    try:
        top = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):
        return
    real = path.resolve()
    below = sorted(p for p in _mount_points(mountinfo) if p != real and p.is_relative_to(real))
    if below:
        raise _across(below[0], path)
    for current, dirs, _files in os.walk(path):  # symlinks are listed, never followed
        here = Path(current)
        for name in dirs:
            child = here / name
            if child.lstat().st_dev != top.st_dev:
                raise _across(child, path)


def _across(mount: Path, path: Path) -> ResetRefused:
    return ResetRefused(
        f"{mount} is a mount point; not deleting across file systems",
        hint=f"nothing in {path} was deleted: unmount it, then run reset-data again",
    )


def remove_tree(path: Path, *, mountinfo: Path = MOUNTINFO) -> None:
    """Delete ``path`` and everything below it, never crossing into another file system or
    a bind mount: with anything mounted below it, nothing is deleted."""
    check_removable(path, mountinfo=mountinfo)
    try:
        top = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):
        path.unlink()
        return
    for current, dirs, files in os.walk(path, topdown=False):
        here = Path(current)
        for name in files:
            (here / name).unlink()
        for name in dirs:
            child = here / name
            info = child.lstat()
            if stat.S_ISLNK(info.st_mode):
                child.unlink()
                continue
            if info.st_dev != top.st_dev:  # mounted since the check
                raise _across(child, path)
            child.rmdir()
    path.rmdir()


def execute(
    plan: Plan,
    settings: Settings,
    runtime: Runtime,
    *,
    say: Callable[[str], None],
    sleep: Callable[[float], None],
) -> str:
    """Delete what ``plan`` lists, rotate the token; returns the new token (for the console
    only: the caller never prints it)."""
    kube = runtime.kube
    for deletion in plan.cluster:
        say(f"deleting {deletion.label}")
        try:
            kube.delete(deletion.resource, deletion.name, deletion.namespace)
        except KubeError as exc:
            raise ResetRefused(
                f"deleting {deletion.label} failed: {exc.message}",
                hint="read the error, fix it, then run reset-data again; the host state was "
                "not touched yet",
            ) from exc
    if plan.namespaces or plan.claimed_volumes:
        say("waiting for the namespaces and volumes to be gone")
        _wait_gone(
            kube,
            plan,
            settings.timeouts.storage,
            max(0.05, settings.timeouts.poll_interval),
            sleep,
        )
    for path in [path for path, _what in plan.volumes] + list(plan.files):
        check_removable(path)  # before anything on the host goes
    for path, what in plan.volumes:
        say(f"removing {path} ({what})")
        remove_tree(path)
    for path in plan.files:
        say(f"removing {path}")
        remove_tree(path)
    if plan.env_has_proxy:
        say(f"removing the proxy from {settings.paths.k3s_env}")
        atomic.write_text(settings.paths.k3s_env, k3s_files.HEADER, mode=0o600)
    say("rotating the setup token and ending every session")
    settings.paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = setup_token.rotate(settings.paths.token_file)
    # A fresh install has no session key yet; any cookie signed with the old one is dead.
    settings.paths.session_key_file.unlink(missing_ok=True)
    try:
        console.show(settings, addresses=runtime.host.addresses(), token=token)
    except OSError as exc:
        say(f"note: the console banner was not refreshed: {exc}")
    if plan.env_has_proxy:
        say("restarting k3s (without the proxy)")
        try:
            runtime.systemd.restart(k3s_files.UNIT)
        except SystemdError as exc:
            say(
                f"note: restarting k3s failed ({exc.message}); it uses the new environment "
                "after its next restart"
            )
    return token
