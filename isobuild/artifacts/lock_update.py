"""`isobuild lock --update`: resolve new k3s/Flux versions and write their pins.

k3s comes from its stable channel (``update.k3s.io`` redirects to the release tag), Flux
from its latest GitHub release. Digests are read from the publishers' own checksum files
(k3s ``sha256sum-amd64.txt``, Flux ``flux_<v>_checksums.txt``, which lists install.yaml too
since Flux 0.25.3); install.yaml is also downloaded (its images are needed) and must hash
to its entry; every controller image it deploys is resolved to its registry digest (the
multi-arch index). The result is validated,
shown as a diff and written atomically. Builds never do this implicitly.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from host_service import atomic
from host_service.oci import RegistryClient, RegistryError
from isobuild.artifacts.fetch import USER_AGENT, HttpDownloader, parse_checksums
from isobuild.artifacts.flux_install import referenced_images
from isobuild.artifacts.image_archive import default_client_factory
from isobuild.artifacts.lockfile import DEFAULT_FLUX_CONTROLLERS, format_lock, load_lock
from isobuild.errors import PayloadError, VerificationError

K3S_BINARY = "k3s"
K3S_AIRGAP = "k3s-airgap-images-amd64.tar.zst"
K3S_SUMS = "sha256sum-amd64.txt"


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """Where new versions are looked up (overridable for mirrors and tests)."""

    k3s_channel: str = "https://update.k3s.io/v1-release/channels/stable"
    flux_latest: str = "https://api.github.com/repos/fluxcd/flux2/releases/latest"
    k3s_releases: str = "https://github.com/k3s-io/k3s/releases/download"
    flux_releases: str = "https://github.com/fluxcd/flux2/releases/download"


@dataclass(frozen=True, kw_only=True)
class LockUpdate:
    path: Path
    old_text: str
    new_text: str

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.old_text.splitlines(keepends=True),
                self.new_text.splitlines(keepends=True),
                fromfile=f"{self.path} (current)",
                tofile=f"{self.path} (updated)",
            )
        )


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def resolve_k3s_stable(session: requests.Session, channel_url: str) -> str:
    """The release tag the stable channel redirects to (``v1.36.3+k3s1``)."""
    try:
        response = session.get(channel_url, allow_redirects=False, timeout=30)
    except requests.RequestException as exc:
        raise PayloadError(f"{channel_url}: {exc}", hint="check the network or proxy") from exc
    location = response.headers.get("Location", "")
    if response.status_code not in (301, 302, 303, 307, 308) or "/tag/" not in location:
        raise PayloadError(
            f"{channel_url}: expected a redirect to a release tag, got HTTP "
            f"{response.status_code} {location!r}",
            hint="pin the version instead: isobuild lock --update --k3s-version vX.Y.Z+k3sN",
        )
    return urllib.parse.unquote(location.rstrip("/").rsplit("/", 1)[1])


def resolve_flux_latest(http: HttpDownloader, latest_url: str) -> str:
    """The latest Flux release version without the ``v`` (``2.9.4``)."""
    try:
        tag = str(json.loads(http.get_text(latest_url))["tag_name"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PayloadError(
            f"{latest_url}: no tag_name in the release document",
            hint="pin the version instead: isobuild lock --update --flux-version X.Y.Z",
        ) from exc
    return tag.removeprefix("v")


def _entry(sums: Mapping[str, str], name: str, sums_url: str) -> str:
    if name not in sums:
        raise VerificationError(
            f"{sums_url}: the publisher checksum file has no entry for {name}",
            hint="the release's asset names changed: pin a version that has them "
            "(--k3s-version / --flux-version) or update isobuild",
        )
    return sums[name]


def controller_images(install_yaml: str, *, source: str) -> dict[str, tuple[str, str]]:
    """controller → (repository, tag) of every workload install.yaml deploys."""
    found = referenced_images(install_yaml, source=source)
    missing = sorted(set(DEFAULT_FLUX_CONTROLLERS) - set(found))
    if missing:
        raise PayloadError(
            f"{source}: deploys no {', '.join(missing)}",
            hint="the appliance needs these controllers: pin a Flux release that ships them "
            "(--flux-version)",
        )
    return found


def new_lock_document(
    k3s_version: str,
    flux_version: str,
    *,
    upstream: Upstream,
    http: HttpDownloader,
    client_factory: Callable[[str], RegistryClient],
) -> dict[str, Any]:
    """Pins for these versions, read from the publishers and the registry."""
    k3s_base = f"{upstream.k3s_releases}/{urllib.parse.quote(k3s_version, safe='')}"
    k3s_sums_url = f"{k3s_base}/{K3S_SUMS}"
    k3s_sums = parse_checksums(http.get_text(k3s_sums_url))
    flux_base = f"{upstream.flux_releases}/v{flux_version}"
    flux_sums_name = f"flux_{flux_version}_checksums.txt"
    flux_sums_url = f"{flux_base}/{flux_sums_name}"
    flux_sums = parse_checksums(http.get_text(flux_sums_url))
    cli = f"flux_{flux_version}_linux_amd64.tar.gz"
    install_url = f"{flux_base}/install.yaml"
    install_text = http.get_text(install_url)
    install_sha = _entry(flux_sums, "install.yaml", flux_sums_url)
    downloaded = hashlib.sha256(install_text.encode()).hexdigest()
    if downloaded != install_sha:
        raise VerificationError(
            f"{install_url}: sha256 {downloaded} but {flux_sums_url} lists {install_sha}",
            hint="the download was altered on the way (proxy?) or the release was re-published",
        )
    images: dict[str, Any] = {}
    for name, (repository, tag) in sorted(
        controller_images(install_text, source=install_url).items()
    ):
        registry, _, path = repository.partition("/")
        try:
            with client_factory(registry) as client:
                digest = client.resolve(path, tag)
        except RegistryError as exc:
            raise PayloadError(
                f"{repository}:{tag}: cannot resolve its digest: {exc}",
                hint=exc.hint or "check access to the registry (proxy? HTTPS_PROXY/NO_PROXY)",
            ) from exc
        images[name] = {"repository": repository, "tag": tag, "digest": digest}
    return {
        "schema": 1,
        "k3s": {
            "version": k3s_version,
            "base_url": k3s_base,
            "checksum_file": K3S_SUMS,
            "files": {
                "binary": {
                    "name": K3S_BINARY,
                    "sha256": _entry(k3s_sums, K3S_BINARY, k3s_sums_url),
                },
                "airgap_images": {
                    "name": K3S_AIRGAP,
                    "sha256": _entry(k3s_sums, K3S_AIRGAP, k3s_sums_url),
                },
            },
        },
        "flux": {
            "version": flux_version,
            "base_url": flux_base,
            "checksum_file": flux_sums_name,
            "files": {
                "cli": {"name": cli, "sha256": _entry(flux_sums, cli, flux_sums_url)},
                "install_manifest": {"name": "install.yaml", "sha256": install_sha},
            },
            "images": images,
        },
    }


def _header(upstream: Upstream, k3s_version: str, flux_version: str) -> str:
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    return f"""\
The pinned k3s and Flux artifacts every appliance ISO carries (see docs/payload.md).
Written by `isobuild lock --update` on {today}: k3s {k3s_version} from the stable channel
({upstream.k3s_channel}), Flux {flux_version} as the latest release ({upstream.flux_latest}).
File digests come from the publishers' checksum files ({K3S_SUMS}, flux_<v>_checksums.txt);
including install.yaml, which was also hashed as downloaded; image digests are the
registry's multi-arch indexes of every controller image install.yaml deploys.
Review the diff before committing; builds re-check every pin against the publishers."""


def update_lock(
    path: Path,
    *,
    write: bool = True,
    upstream: Upstream = Upstream(),
    http: HttpDownloader | None = None,
    client_factory: Callable[[str], RegistryClient] = default_client_factory,
    k3s_version: str | None = None,
    flux_version: str | None = None,
) -> LockUpdate:
    """Resolve versions (unless given), build the new lock text, write it when ``write``."""
    old_text = path.read_text(encoding="utf-8") if path.exists() else ""
    if old_text:
        load_lock(path)  # a broken current lock is reported, not silently replaced
    session = _session()
    http = http or HttpDownloader(session)
    k3s_version = k3s_version or resolve_k3s_stable(session, upstream.k3s_channel)
    flux_version = flux_version or resolve_flux_latest(http, upstream.flux_latest)
    document = new_lock_document(
        k3s_version, flux_version, upstream=upstream, http=http, client_factory=client_factory
    )
    if old_text and yaml.safe_load(old_text) == document:
        return LockUpdate(path=path, old_text=old_text, new_text=old_text)
    new_text = format_lock(
        document, header=_header(upstream, k3s_version, flux_version), source=path
    )
    update = LockUpdate(path=path, old_text=old_text, new_text=new_text)
    if write and update.changed:
        atomic.write_text(path, new_text, mode=0o644)
    return update
