"""Every secret value the appliance knows, gathered so the bundle can redact it anywhere.

The values stay in memory; nothing here is written anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from host_service.kube import Kube, Object
from host_service.settings import Settings, rooted
from host_service.support.redact import MIN_SECRET_LENGTH

# k3s' own credentials on the host (join tokens).
K3S_TOKEN_FILES = ("/var/lib/rancher/k3s/server/token", "/var/lib/rancher/k3s/server/node-token")
# Helm keeps each release (values included) in a Secret of this type: its decoded data is a
# gzipped blob, not a value that could turn up in a log.
HELM_RELEASE_TYPE = "helm.sh/release.v1"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def proxy_secrets(proxy: str | None) -> list[str]:
    """The proxy URL and its password (as typed and URL-decoded)."""
    if not proxy:
        return []
    found = [proxy]
    with contextlib.suppress(ValueError):
        password = urlsplit(proxy).password
        if password:
            found += [password, unquote(password)]
    return found


def kubeconfig_secrets(text: str) -> list[str]:
    """Credentials in a kubeconfig: tokens, passwords, client keys (base64 and PEM)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    found: list[str] = []
    users = document.get("users") if isinstance(document, Mapping) else None
    for user in users if isinstance(users, list) else []:
        creds = user.get("user") if isinstance(user, Mapping) else None
        if not isinstance(creds, Mapping):
            continue
        for key in ("token", "password", "client-key-data"):
            value = creds.get(key)
            if isinstance(value, str) and value:
                found.append(value)
                if key.endswith("-data"):
                    with contextlib.suppress(ValueError):
                        found.append(base64.b64decode(value).decode("utf-8", "replace"))
    return found


def _inputs_proxy(text: str) -> str | None:
    """The proxy URL in the setup inputs' text, even when the rest of the file is damaged."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    proxy = document.get("proxy") if isinstance(document, dict) else None
    return proxy if isinstance(proxy, str) else None


def host_secrets(settings: Settings) -> list[str | bytes]:
    """Secrets kept on the host: setup token, session key, operator proxy, kubeconfig, k3s."""
    paths = settings.paths
    found: list[str | bytes] = []
    token = _read_text(paths.token_file)
    if token:
        found += [token, token.replace("-", "")]
    key = _read_bytes(paths.session_key_file)
    if key:
        found.append(key)
    inputs = _read_text(paths.intent_file)
    if inputs:
        found += proxy_secrets(_inputs_proxy(inputs))
    kubeconfig = _read_text(paths.kubeconfig)
    if kubeconfig:
        found += kubeconfig_secrets(kubeconfig)
    for name in K3S_TOKEN_FILES:
        value = _read_text(rooted(paths.root, name))
        if value:
            found.append(value)
            # "K10<ca hash>::server:<secret>": the secret part alone too.
            found.append(value.rpartition(":")[2])
    return found


def _forms(value: str) -> list[str]:
    """``value``, and ``value`` without surrounding whitespace: a Secret made from a file
    (``kubectl create secret --from-file``) keeps the file's last newline, which a program
    that prints the value does not. The trimmed form only from ``MIN_SECRET_LENGTH`` on, as
    every known value: a shorter one would take unrelated text with it."""
    trimmed = value.strip()
    if not trimmed:
        return []
    return [value, trimmed] if trimmed != value and len(trimmed) >= MIN_SECRET_LENGTH else [value]


def secret_values(secrets: Iterable[Object]) -> list[str]:
    """The decoded values of Kubernetes Secrets (Helm's release records excepted)."""
    found: list[str] = []
    for obj in secrets:
        if obj.get("type") == HELM_RELEASE_TYPE:
            continue
        for value in (obj.get("data") or {}).values():
            with contextlib.suppress(ValueError, TypeError):
                found += _forms(base64.b64decode(str(value)).decode("utf-8", "replace"))
        for value in (obj.get("stringData") or {}).values():
            found += _forms(str(value))
    return found


def cluster_secrets(kube: Kube) -> tuple[list[str], list[Object]]:
    """Every Secret value in the cluster, and the Secret objects (for their metadata)."""
    objects = kube.list("secrets")
    return secret_values(objects), objects
