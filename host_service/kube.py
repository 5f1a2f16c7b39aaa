"""Kubernetes through kubectl (``k3s kubectl`` on the appliance): structured JSON only.

One typed interface (``Kube``) with one real implementation (``Kubectl``). Output is parsed
as JSON, never scraped from tables, and never capped: a silently truncated list once made a
whole pods view empty. Errors keep kubectl's stderr for the blocker shown to the operator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from host_service import command
from host_service.command import CommandError

Object = dict[str, Any]
FIELD_MANAGER = "alga-appliance"


class KubeError(CommandError):
    """kubectl failed; ``output`` is the tail of its stderr."""


class Kube(Protocol):
    def readyz(self) -> str: ...

    def get(self, resource: str, name: str, namespace: str | None = None) -> Object | None: ...

    def list(
        self, resource: str, namespace: str | None = None, *, selector: str | None = None
    ) -> list[Object]:
        """``namespace=None`` lists cluster-scoped resources or all namespaces."""
        ...

    def apply(self, objects: Sequence[Mapping[str, Any]], *, field_manager: str) -> None:
        """Server-side apply with ``--force-conflicts``: the appliance owns these fields."""
        ...

    def apply_file(self, path: Path, *, field_manager: str) -> None: ...

    def create(self, obj: Mapping[str, Any]) -> bool:
        """Create ``obj``; False when it already exists (it is left untouched)."""
        ...

    def patch(
        self, resource: str, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> None:
        """A JSON merge patch."""
        ...

    def delete(self, resource: str, name: str, namespace: str | None = None) -> None:
        """Delete if present; does not wait for finalizers."""
        ...

    def logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
        since_time: str | None = None,
        limit_bytes: int | None = None,
    ) -> str:
        """The container's log (``previous``: of its last terminated instance).

        ``timestamps`` starts each line with its RFC 3339 time and a space; ``since_time``
        (RFC 3339, whole seconds: the API rounds it down) keeps lines logged from then on;
        ``tail`` the last lines of what is left; ``limit_bytes`` cuts the answer there.
        """
        ...

    def follow_logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail: int = 100,
        timestamps: bool = False,
        since_time: str | None = None,
    ) -> Iterator[str]:
        """The last ``tail`` lines, then new lines as the pod writes them, until it ends or
        the caller closes the iterator (for live log views)."""
        ...


def _namespace_args(namespace: str | None) -> list[str]:
    return ["--namespace", namespace] if namespace else []


class Kubectl:
    """``Kube`` over a kubectl argv prefix (``k3s kubectl --kubeconfig ...`` or kubectl)."""

    def __init__(self, argv: Sequence[str], *, timeout: float = 60.0) -> None:
        self.argv = tuple(argv)
        self.timeout = timeout

    def _run(self, args: Sequence[str], *, input: bytes | None = None) -> str:
        full = [*self.argv, f"--request-timeout={int(self.timeout)}s", *args]
        try:
            return command.run(full, input=input, timeout=self.timeout + 5).stdout
        except CommandError as exc:
            raise KubeError(_summary(exc), argv=exc.argv, output=exc.output) from exc

    def _json(self, args: Sequence[str]) -> Any:
        text = self._run(args)
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise KubeError(
                f"kubectl {' '.join(args[:2])} did not print JSON", argv=args, output=text[-2000:]
            ) from exc

    def readyz(self) -> str:
        return self._run(["get", "--raw=/readyz"]).strip()

    def get(self, resource: str, name: str, namespace: str | None = None) -> Object | None:
        found = self._json(
            ["get", resource, name, *_namespace_args(namespace), "--ignore-not-found", "-o", "json"]
        )
        return found if isinstance(found, dict) else None

    def list(
        self, resource: str, namespace: str | None = None, *, selector: str | None = None
    ) -> list[Object]:
        args = ["get", resource, *(_namespace_args(namespace) or ["--all-namespaces"])]
        if selector:
            args += ["--selector", selector]
        found = self._json([*args, "-o", "json", "--chunk-size=0"])
        items = found.get("items", []) if isinstance(found, dict) else []
        return [i for i in items if isinstance(i, dict)]

    def apply(self, objects: Sequence[Mapping[str, Any]], *, field_manager: str) -> None:
        # A YAML stream of JSON documents, not a v1 List: kubectl validates a List as a whole
        # and cannot hand that to the server's field validation.
        stream = "".join(f"---\n{json.dumps(o)}\n" for o in objects)
        self._run(_apply_args("-", field_manager), input=stream.encode())

    def apply_file(self, path: Path, *, field_manager: str) -> None:
        self._run(_apply_args(str(path), field_manager))

    def create(self, obj: Mapping[str, Any]) -> bool:
        try:
            self._run(["create", "-f", "-", "-o", "name"], input=json.dumps(obj).encode())
        except KubeError as exc:
            if "AlreadyExists" in exc.output or "already exists" in exc.output:
                return False
            raise
        return True

    def patch(
        self, resource: str, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> None:
        self._run(
            [
                "patch",
                resource,
                name,
                *_namespace_args(namespace),
                "--type=merge",
                "-p",
                json.dumps(patch),
                "-o",
                "name",
            ]
        )

    def delete(self, resource: str, name: str, namespace: str | None = None) -> None:
        self._run(
            [
                "delete",
                resource,
                name,
                *_namespace_args(namespace),
                "--ignore-not-found",
                "--wait=false",
            ]
        )

    def logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
        since_time: str | None = None,
        limit_bytes: int | None = None,
    ) -> str:
        args = ["logs", pod, *_namespace_args(namespace)]
        args += _log_args(container, tail=tail, timestamps=timestamps, since_time=since_time)
        if previous:
            args.append("--previous")
        if limit_bytes is not None:
            args.append(f"--limit-bytes={limit_bytes}")
        return self._run(args)

    def follow_logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail: int = 100,
        timestamps: bool = False,
        since_time: str | None = None,
    ) -> Iterator[str]:
        args = [*self.argv, "logs", "--follow", pod, "--namespace", namespace]
        args += _log_args(container, tail=tail, timestamps=timestamps, since_time=since_time)
        try:
            yield from command.stream_lines(args)
        except CommandError as exc:
            raise KubeError(_summary(exc), argv=exc.argv, output=exc.output) from exc


def _log_args(
    container: str | None, *, tail: int | None, timestamps: bool, since_time: str | None
) -> list[str]:
    args = ["--container", container] if container else []
    if tail is not None:
        args.append(f"--tail={tail}")
    if timestamps:
        args.append("--timestamps")
    if since_time is not None:
        args.append(f"--since-time={since_time}")
    return args


def _apply_args(source: str, field_manager: str) -> list[str]:
    """Server-side apply of ``source`` (a file or ``-``): the appliance owns these fields."""
    return [
        "apply", "--server-side", "--force-conflicts", f"--field-manager={field_manager}",
        "-f", source, "-o", "name",
    ]  # fmt: skip


def _summary(exc: CommandError) -> str:
    """The first line kubectl printed to stderr, which names the API error."""
    first = exc.output.strip().splitlines()[:1]
    return first[0] if first else exc.message


def condition(obj: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    """The status condition of type ``kind``, if the object reports one."""
    if not obj:
        return None
    for cond in (obj.get("status") or {}).get("conditions") or []:  # a "status" may be null
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return None


def is_true(obj: Mapping[str, Any] | None, kind: str) -> bool:
    cond = condition(obj, kind)
    return cond is not None and cond.get("status") == "True"


def containers(workload: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The containers of a workload's pod template (Deployment, DaemonSet, ...)."""
    template = ((workload or {}).get("spec") or {}).get("template") or {}
    found = (template.get("spec") or {}).get("containers") or []
    return [c for c in found if isinstance(c, Mapping)]
