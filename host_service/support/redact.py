"""Redaction for the support bundle: known secret values, secret-shaped text, and objects.

Three layers, each applied to everything the bundle writes:

1. structure: Secret data, HelmRelease inline values, secret-named container env values,
   ``last-applied-configuration`` and managed fields are removed from Kubernetes objects
   before they are serialised; secret-named keys in YAML/JSON documents are blanked;
2. known values: every secret the appliance knows (setup token, session key, proxy
   password, kubeconfig credentials, k3s tokens, the cluster's Secret values) is replaced
   wherever it occurs, also base64-, URL- and JSON-encoded;
3. shapes: URL credentials, ``Authorization`` headers, ``password=...``-style pairs, PEM
   private keys, JWTs and setup-token-shaped strings, for secrets nobody told us about.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
# Shorter values cannot be replaced without destroying unrelated text ("on", "msp").
MIN_SECRET_LENGTH = 4

_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credentials?|"
    r"client[_-]?key|license[_-]?key|auth[_-]?key|crypto[_-]?key)",
    re.IGNORECASE,
)
# Keys that merely name or point at a secret (secretName: alga-appliance-secrets).
_REFERENCE_KEY = re.compile(r"(name|ref|refs|file|path|dir|mode|type|_at|at)$", re.IGNORECASE)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# (name, pattern, replacement) for secrets nobody told us about; the names go in the manifest.
SHAPES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "pem-private-key",
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL
        ),
        f"-----{REDACTED} PRIVATE KEY-----",
    ),
    ("url-credentials", re.compile(r"(?<=://)[^/\s:@\"']+:[^/\s@\"']*@"), f"{REDACTED}@"),
    (
        "authorization-header",
        re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*[\"']?(?:bearer|basic|token)\s+)\S+"),
        rf"\1{REDACTED}",
    ),
    (
        "secret-assignment",
        re.compile(
            r"(?i)\b([\w.-]*(?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key"
            r"|license[_-]?key|client[_-]?key|credentials?))"
            r"([\"']?\s*[:=]\s*[\"']?)(?!<redacted|(?:true|false|null|none|yes|no)\b|[0-9.]+\b)([^\s\"',;&}]{3,})"
        ),
        rf"\1\2{REDACTED}",
    ),
    (
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        REDACTED,
    ),
    (
        "setup-token",
        re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b"),
        REDACTED,
    ),
)


def encodings(value: str | bytes) -> set[str]:
    """The forms a secret takes in text: as is, base64 (both alphabets), URL- and JSON-quoted;
    a binary secret (the session key) as hex and base64."""
    raw = value.encode() if isinstance(value, str) else value
    forms = {
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
    }
    if isinstance(value, str):
        forms |= {value, quote(value), quote(value, safe=""), quote_plus(value)}
        forms.add(json.dumps(value)[1:-1])
    else:
        with contextlib.suppress(UnicodeDecodeError):
            forms.add(raw.decode("utf-8"))
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Replaces known secret values (in every encoding) and secret shapes in text."""

    def __init__(self, secrets: Iterable[str | bytes] = ()) -> None:
        needles: set[str] = set()
        self.known = 0
        for secret in secrets:
            if len(secret) < MIN_SECRET_LENGTH:
                continue
            self.known += 1
            needles |= encodings(secret)
        # Longest first: a secret that contains another is replaced whole.
        self._needles = sorted(needles, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(n) for n in self._needles)) if self._needles else None
        )

    def text(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        for _, pattern, replacement in SHAPES:
            text = pattern.sub(replacement, text)
        return text

    def data(self, data: bytes) -> bytes:
        """Bytes through ``text``; undecodable bytes survive unchanged (surrogateescape)."""
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def is_secret_key(key: str) -> bool:
    """A mapping key whose value is a secret (``password``, ``api_key``), not a reference
    to one (``secretName``, ``tokenFile``)."""
    return bool(_SECRET_KEY.search(key)) and not _REFERENCE_KEY.search(key)


def scrub_document(document: Any) -> Any:
    """A YAML/JSON document with the value of every secret-named key replaced."""
    if isinstance(document, Mapping):
        return {
            key: (REDACTED if is_secret_key(str(key)) and value not in (None, "") else
                  scrub_document(value))
            for key, value in document.items()
        }  # fmt: skip
    if isinstance(document, list):
        return [scrub_document(item) for item in document]
    return document


def _scrub_env(containers: Any) -> None:
    for container in containers or []:
        if not isinstance(container, dict):
            continue
        for env in container.get("env") or []:
            if isinstance(env, dict) and "value" in env and is_secret_key(str(env.get("name"))):
                env["value"] = REDACTED


def scrub_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A Kubernetes object as the bundle may show it.

    Secret values become their size; HelmRelease inline values are dropped (the release's
    values ConfigMaps carry no secrets and are collected instead); env values with
    secret-like names are blanked in pods and workload templates; the
    last-applied-configuration annotation (a copy of whatever was applied, Secret data
    included) and managed fields go.
    """
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            annotations[LAST_APPLIED] = REDACTED
    kind = out.get("kind")
    if kind == "Secret":
        for field in ("data", "stringData"):
            values = out.get(field)
            if isinstance(values, dict):
                out[field] = {k: f"{REDACTED} ({_size(v, field)} bytes)" for k, v in values.items()}
        return out
    spec = out.get("spec")
    if not isinstance(spec, dict):
        return out
    if kind == "HelmRelease" and "values" in spec:
        spec["values"] = f"{REDACTED}: inline values are never collected"
    _scrub_env(spec.get("containers"))
    _scrub_env(spec.get("initContainers"))
    template = spec.get("template")
    template = template.get("spec") if isinstance(template, dict) else None
    if isinstance(template, dict):
        _scrub_env(template.get("containers"))
        _scrub_env(template.get("initContainers"))
    return out


def _size(value: Any, field: str) -> int:
    text = str(value)
    if field == "data":
        try:
            return len(base64.b64decode(text))
        except ValueError:
            return len(text)
    return len(text.encode())
