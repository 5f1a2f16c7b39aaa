"""Fetch, verify and cache pinned files from a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.fetch import CHUNK, Fetcher, make_source
from isobuild.artifacts.lockfile import PayloadLock, load_lock
from isobuild.errors import PayloadError, VerificationError
from tests.fixtures.artifact_server import ArtifactServer, ForwardProxy
from tests.fixtures.standin_artifacts import StandinArtifacts

K3S = "/k3s-io/k3s/releases/download/v1.36.3+k3s1"
FLUX = "/fluxcd/flux2/releases/download/v2.9.4"


def publish(standins: StandinArtifacts, server: ArtifactServer) -> None:
    """Serve the stand-in files where GitHub would, under the publishers' release paths."""
    server.put_tree(K3S, standins.directory / "k3s" / "v1.36.3+k3s1")
    server.put_tree(FLUX, standins.directory / "flux" / "2.9.4")


def lock_at(standins: StandinArtifacts, tmp_path: Path, base: str) -> PayloadLock:
    """The stand-in lock with the publishers' host replaced by ``base``."""
    text = standins.lock_path.read_text().replace("https://github.com", base)
    path = tmp_path / "payload.lock.yaml"
    path.write_text(text)
    return load_lock(path)


def fetcher(cache_dir: Path, mirror: str | None = None, retries: int = 3) -> Fetcher:
    source = make_source(mirror, progress=False, retries=retries, backoff=0.01)
    return Fetcher(ArtifactCache(cache_dir), source)


@pytest.fixture
def published(
    standins: StandinArtifacts, artifact_server: ArtifactServer, tmp_path: Path
) -> PayloadLock:
    publish(standins, artifact_server)
    return lock_at(standins, tmp_path, artifact_server.url)


@pytest.fixture
def standins(standin_artifacts_dir: StandinArtifacts) -> StandinArtifacts:
    return standin_artifacts_dir


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_verifies_and_caches_then_uses_the_cache(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    got = fetcher(tmp_path / "cache").fetch_all(published.files())

    assert set(got) == {pin.key for pin in published.files()}
    for pin in published.files():
        assert got[pin.key] == tmp_path / "cache" / "sha256" / pin.sha256
        assert sha256(got[pin.key]) == pin.sha256
    # The publisher's checksum file is read before the file it vouches for.
    paths = [p for _, p, _, _ in artifact_server.served.log]
    assert paths.index(f"{K3S}/sha256sum-amd64.txt") < paths.index(f"{K3S}/k3s")
    before = len(artifact_server.served.log)

    again = fetcher(tmp_path / "cache").fetch_all(published.files())

    assert again == got
    assert len(artifact_server.served.log) == before  # nothing downloaded twice


def test_tampered_file_is_refused_and_nothing_cached(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    pin = published.k3s.files["binary"]
    genuine = artifact_server.served.files[f"{K3S}/k3s"]
    evil = genuine.replace(b"exit 69", b"exit 00")
    artifact_server.served.tampered[f"{K3S}/k3s"] = evil

    with pytest.raises(VerificationError) as caught:
        fetcher(tmp_path / "cache").fetch(pin)

    message = caught.value.message
    assert pin.sha256 in message
    assert hashlib.sha256(evil).hexdigest() in message
    assert not (tmp_path / "cache" / "sha256" / pin.sha256).exists()
    assert not list((tmp_path / "cache" / "partial").glob("*.part"))


def test_checksum_file_disagreeing_with_the_pin_is_refused_before_download(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    pin = published.k3s.files["binary"]
    other = "0" * 64
    sums = artifact_server.served.files[f"{K3S}/sha256sum-amd64.txt"].decode()
    artifact_server.put(f"{K3S}/sha256sum-amd64.txt", sums.replace(pin.sha256, other).encode())

    with pytest.raises(VerificationError) as caught:
        fetcher(tmp_path / "cache").fetch_all(published.files())

    assert other in caught.value.message
    assert pin.sha256 in caught.value.message
    assert "k3s.files.binary" in caught.value.message
    assert artifact_server.requests_for(f"{K3S}/k3s") == []
    assert artifact_server.requests_for(f"{K3S}/k3s-airgap-images-amd64.tar.zst") == []


def test_flux_checksum_file_vouches_for_install_yaml_too(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    """Flux has listed install.yaml in its checksum file since 0.25.3 (issue 12)."""
    pin = published.flux.files["install_manifest"]
    assert pin.checksum_file == "flux_2.9.4_checksums.txt"
    sums_path = f"{FLUX}/flux_2.9.4_checksums.txt"
    sums = artifact_server.served.files[sums_path].decode()
    assert f"{pin.sha256}  install.yaml\n" in sums
    names = [line.split("  ", 1)[1] for line in sums.splitlines()]
    assert names == sorted(names)  # goreleaser's order
    other = "f" * 64
    artifact_server.put(sums_path, sums.replace(pin.sha256, other).encode())

    with pytest.raises(VerificationError) as caught:
        fetcher(tmp_path / "cache").fetch(pin)

    assert "flux.files.install_manifest: install.yaml: the publisher's " in caught.value.message
    assert other in caught.value.message
    assert artifact_server.requests_for(f"{FLUX}/install.yaml") == []


def test_offline_rebuilds_from_the_cache_and_names_every_missing_file(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    with pytest.raises(PayloadError) as caught:
        Fetcher(ArtifactCache(tmp_path / "cache"), None).fetch_all(published.files())
    for pin in published.files():
        assert pin.key in caught.value.message
        assert pin.sha256 in caught.value.message
    assert artifact_server.served.log == []

    online = fetcher(tmp_path / "cache").fetch_all(published.files())
    artifact_server.served.files.clear()  # the network is gone
    before = len(artifact_server.served.log)

    offline = Fetcher(ArtifactCache(tmp_path / "cache"), None).fetch_all(published.files())

    assert offline == online
    assert len(artifact_server.served.log) == before


def test_offline_drops_a_corrupted_cache_entry(published: PayloadLock, tmp_path: Path) -> None:
    pin = published.k3s.files["binary"]
    path = fetcher(tmp_path / "cache").fetch(pin)
    path.write_bytes(path.read_bytes()[:-1] + b"!")

    with pytest.raises(PayloadError, match=r"k3s\.files\.binary"):
        Fetcher(ArtifactCache(tmp_path / "cache"), None).fetch(pin)
    assert not path.exists()


def test_mirror_url_serves_the_same_pins(
    standins: StandinArtifacts, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    lock = standins.lock  # base URLs point at github.com, which is never contacted
    artifact_server.put_tree("/mirror", standins.directory)

    got = fetcher(tmp_path / "cache", f"{artifact_server.url}/mirror/").fetch_all(lock.files())

    assert {sha256(p) for p in got.values()} == {pin.sha256 for pin in lock.files()}
    requested = {p for _, p, _, _ in artifact_server.served.log}
    assert "/mirror/k3s/v1.36.3+k3s1/sha256sum-amd64.txt" in requested
    assert "/mirror/flux/2.9.4/flux_2.9.4_linux_amd64.tar.gz" in requested


def test_mirror_directory_serves_the_same_pins_and_is_verified(
    standins: StandinArtifacts, tmp_path: Path
) -> None:
    lock = standins.lock
    got = fetcher(tmp_path / "cache", str(standins.directory)).fetch_all(lock.files())
    assert {sha256(p) for p in got.values()} == {pin.sha256 for pin in lock.files()}

    # A mirror directory holding a different file than pinned is refused like any source.
    bad = tmp_path / "bad-mirror"
    shutil.copytree(standins.directory, bad)
    binary = bad / "k3s" / "v1.36.3+k3s1" / "k3s"
    binary.write_bytes(binary.read_bytes() + b"\n# extra\n")
    with pytest.raises(VerificationError, match="sha256 mismatch"):
        fetcher(tmp_path / "cache2", str(bad)).fetch(lock.k3s.files["binary"])
    assert not (tmp_path / "cache2" / "sha256").exists()


def test_proxy_from_the_environment_is_honoured(
    standins: StandinArtifacts,
    artifact_server: ArtifactServer,
    forward_proxy: ForwardProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish(standins, artifact_server)
    # A name that resolves nowhere: only the proxy knows where it lives.
    name = f"artifacts.invalid:{artifact_server.port}"
    forward_proxy.hosts[name] = ("127.0.0.1", artifact_server.port)
    lock = lock_at(standins, tmp_path, f"http://{name}")
    for var in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)

    with pytest.raises(PayloadError):
        fetcher(tmp_path / "direct", retries=0).fetch(lock.k3s.files["binary"])

    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    got = fetcher(tmp_path / "cache").fetch_all(lock.files())

    assert len(got) == len(list(lock.files()))
    assert f"http://{name}{K3S.replace('+', '%2B')}/k3s" in forward_proxy.seen
    assert any(url.endswith("/sha256sum-amd64.txt") for url in forward_proxy.seen)


def test_connection_dropped_mid_body_resumes_with_a_range_request(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    pin = published.k3s.files["binary"]
    artifact_server.served.drop_after[f"{K3S}/k3s"] = (100_000, 1)

    path = fetcher(tmp_path / "cache").fetch(pin)

    assert sha256(path) == pin.sha256
    (first, second) = artifact_server.requests_for(f"{K3S}/k3s")
    assert first == ("GET", None, 200)
    # requests hands out whole chunks: what arrived before the drop, rounded down to one.
    assert second == ("GET", f"bytes={CHUNK}-", 206)


def test_server_errors_are_retried_with_backoff(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    pin = published.flux.files["cli"]
    path_on_server = f"{FLUX}/{pin.name}"
    artifact_server.served.fail_first[path_on_server] = 2
    artifact_server.served.fail_first[f"{FLUX}/flux_2.9.4_checksums.txt"] = 1

    path = fetcher(tmp_path / "cache").fetch(pin)

    assert sha256(path) == pin.sha256
    assert [s for _, _, s in artifact_server.requests_for(path_on_server)] == [503, 503, 200]


def test_giving_up_keeps_the_partial_file_for_next_time(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    pin = published.k3s.files["binary"]
    artifact_server.served.drop_after[f"{K3S}/k3s"] = (3 * CHUNK + 100, 1)
    artifact_server.served.fail_first[f"{K3S}/k3s"] = 0

    # One attempt only: the drop ends this run with a partial file on disk.
    with pytest.raises(PayloadError, match="download failed after 1 attempts"):
        fetcher(tmp_path / "cache", retries=0).fetch(pin)
    partial = tmp_path / "cache" / "partial" / f"{pin.sha256}.part"
    kept = partial.stat().st_size
    assert 0 < kept < len(artifact_server.served.files[f"{K3S}/k3s"])

    path = fetcher(tmp_path / "cache").fetch(pin)  # the next run resumes it

    assert sha256(path) == pin.sha256
    assert artifact_server.requests_for(f"{K3S}/k3s")[-1] == ("GET", f"bytes={kept}-", 206)
    assert not partial.exists()


def test_server_without_ranges_restarts_the_download(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    pin = published.k3s.files["binary"]
    artifact_server.served.ranges = False
    artifact_server.served.drop_after[f"{K3S}/k3s"] = (70_000, 1)

    path = fetcher(tmp_path / "cache").fetch(pin)

    assert sha256(path) == pin.sha256
    assert artifact_server.requests_for(f"{K3S}/k3s")[-1] == ("GET", f"bytes={CHUNK}-", 200)


def test_stale_partial_that_is_not_a_prefix_is_discarded(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    pin = published.k3s.files["binary"]
    cache = ArtifactCache(tmp_path / "cache")
    cache.partial_path(pin.sha256).write_bytes(b"garbage from another file" * 100)

    path = fetcher(tmp_path / "cache").fetch(pin)

    assert sha256(path) == pin.sha256
    ranges = [r for _, r, _ in artifact_server.requests_for(f"{K3S}/k3s")]
    assert ranges == ["bytes=2500-", None]  # resumed, failed verification, clean download


def test_missing_file_names_the_url(
    published: PayloadLock, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    del artifact_server.served.files[f"{K3S}/k3s"]
    with pytest.raises(PayloadError, match=r"releases/download/v1\.36\.3%2Bk3s1/k3s: HTTP 404"):
        fetcher(tmp_path / "cache").fetch(published.k3s.files["binary"])


def test_mirror_credentials_never_reach_the_output(
    standins: StandinArtifacts, artifact_server: ArtifactServer, tmp_path: Path
) -> None:
    secret = "S3cretPW"
    artifact_server.put_tree("/mirror", standins.directory)
    artifact_server.served.fail_first["/mirror/k3s/v1.36.3+k3s1/sha256sum-amd64.txt"] = 1
    del artifact_server.served.files["/mirror/k3s/v1.36.3+k3s1/k3s"]
    mirror = f"http://user:{secret}@127.0.0.1:{artifact_server.port}/mirror"

    done = subprocess.run(
        [sys.executable, "-m", "isobuild.cli", "--debug", "fetch", "--lock",
         str(standins.lock_path), "--cache-dir", str(tmp_path / "cache"), "--mirror", mirror],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    shown = f"http://***@127.0.0.1:{artifact_server.port}/mirror/k3s/v1.36.3%2Bk3s1"
    assert done.returncode == 1, done.stderr
    assert f"{shown}/sha256sum-amd64.txt: HTTP 503; retrying in 1.0 s" in done.stderr
    assert f"error: {shown}/k3s: HTTP 404" in done.stderr.splitlines()
    assert secret not in done.stdout + done.stderr  # --debug tracebacks included
