"""Which log a request names, validated from its query: namespace, pod, container, instance."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from host_service.errors import InvalidInput
from host_service.logs.lines import BadCursor, Cursor, parse_cursor

# Pod names are DNS-1123 subdomains, container and namespace names DNS-1123 labels.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


class InvalidLogRequest(InvalidInput):
    """A request's parameters, each bad one named with what to send instead."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__(
            "invalid log request: " + "; ".join(f"{k}: {v}" for k, v in fields.items())
        )
        self.fields = dict(fields)


@dataclass(frozen=True, kw_only=True)
class LogTarget:
    namespace: str
    pod: str
    container: str | None  # None: the pod's only container, looked up
    previous: bool = False  # the last terminated instance, after a restart
    all_namespaces: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.pod, self.container or "")

    def query(self) -> str:
        """The query string that names this log (for links between the views)."""
        params = {"namespace": self.namespace, "pod": self.pod}
        if self.container:
            params["container"] = self.container
        if self.previous:
            params["previous"] = "1"
        if self.all_namespaces:
            params["all"] = "1"
        return urlencode(params)


def name_problem(value: str, *, subdomain: bool) -> str | None:
    limit, pattern = (253, _SUBDOMAIN) if subdomain else (63, _LABEL)
    if not value:
        return "required"
    if len(value) > limit:
        return f"at most {limit} characters, got {len(value)}"
    if not pattern.fullmatch(value):
        what = "DNS-1123 subdomain" if subdomain else "DNS-1123 label"
        return f"{value[:80]!r} is not a {what} (lowercase letters, digits, '-'" + (
            ", '.')" if subdomain else ")"
        )
    return None


def flag(args: Mapping[str, str], name: str, errors: dict[str, str]) -> bool:
    value = args.get(name, "").strip().lower()
    if value not in FLAGS:
        errors[name] = f"expected 1 or 0, got {value[:20]!r}"
        return False
    return FLAGS[value]


def parse_target(args: Mapping[str, str], namespaces: Sequence[str]) -> LogTarget:
    """``args`` is the query (last value of each); ``namespaces`` the appliance's own, the
    only ones allowed without ``all=1``."""
    errors: dict[str, str] = {}
    namespace = args.get("namespace", "")
    pod = args.get("pod", "")
    container = args.get("container") or None
    all_namespaces = flag(args, "all", errors)
    previous = flag(args, "previous", errors)
    if problem := name_problem(namespace, subdomain=False):
        errors["namespace"] = problem
    elif namespace not in namespaces and not all_namespaces:
        errors["namespace"] = (
            f"{namespace!r} is not one of the appliance's namespaces ({', '.join(namespaces)}); "
            "add all=1 to read another namespace"
        )
    if problem := name_problem(pod, subdomain=True):
        errors["pod"] = problem
    if container is not None and (problem := name_problem(container, subdomain=False)):
        errors["container"] = problem
    if errors:
        raise InvalidLogRequest(errors)
    return LogTarget(
        namespace=namespace, pod=pod, container=container, previous=previous,
        all_namespaces=all_namespaces,
    )  # fmt: skip


def count(args: Mapping[str, str], name: str, *, default: int, most: int) -> int:
    """A line count from 1 to ``most``."""
    text = args.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= most:
        raise InvalidLogRequest(
            {name: f"expected a whole number from 1 to {most}, got {text[:20]!r}"}
        )
    return int(text)


def cursor(args: Mapping[str, str], name: str) -> Cursor | None:
    text = args.get(name)
    if not text:
        return None
    try:
        return parse_cursor(text)
    except BadCursor as exc:
        raise InvalidLogRequest({name: str(exc)}) from exc


class NoSuchLog(InvalidInput):
    """The pod, the container or its previous instance does not exist (HTTP 404)."""


def container_names(pod: Mapping[str, object]) -> list[str]:
    spec = pod.get("spec")
    names: list[str] = []
    if isinstance(spec, Mapping):
        for kind in ("initContainers", "containers", "ephemeralContainers"):
            found = spec.get(kind)
            if isinstance(found, list):
                names += [str(c["name"]) for c in found if isinstance(c, Mapping) and "name" in c]
    return names


def pick_container(pod: Mapping[str, object] | None, target: LogTarget) -> LogTarget:
    """``target`` with its container checked against the pod (or chosen: its only one)."""
    where = f"pod {target.pod!r} in namespace {target.namespace!r}"
    if pod is None:
        raise NoSuchLog(
            f"{where} does not exist (it may have been replaced: open the workloads view)"
        )
    names = container_names(pod)
    if target.container is None:
        if len(names) == 1:
            return replace(target, container=names[0])
        raise InvalidLogRequest(
            {"container": f"required: {where} has containers {', '.join(names) or '(none)'}"}
        )
    if target.container not in names:
        raise NoSuchLog(
            f"{where} has no container {target.container!r}; its containers: "
            + (", ".join(names) or "(none)")
        )
    return target
