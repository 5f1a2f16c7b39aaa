"""Pure parts of the payload: checksum files, the artifact cache, archives, stand-in formats."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from host_service.oci import OCI_MANIFEST
from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.fetch import parse_checksums
from isobuild.artifacts.image_archive import ImageContent, inspect_archive, write_archive
from isobuild.artifacts.lockfile import load_lock
from isobuild.errors import ConfigError, OutputExistsError, PayloadError, VerificationError
from isobuild.standin import artifacts as standin_artifacts
from isobuild.standin.artifacts import make_image, write_standins, zstd_frame

K3S_SUMS = """\
2f98a9f8fe5782479ee2d54e70a1b10a7f6fd4cae8d38ed3098452dc6eed76b5  k3s
a197d79e979cc3f4fa9bca8f500bd70092b25c1b5ebda68b35a25f792abd42b0  k3s-airgap-images-amd64.tar.zst
"""


def test_checksum_formats_of_the_publishers() -> None:
    bsd = "SHA256 (install.yaml) = " + "c" * 64
    binary_mode = "D" * 64 + " *flux_2.9.4_linux_amd64.tar.gz"
    with_dir = "e" * 64 + "  ./dist/manifests.tar.gz"
    entries = parse_checksums("\n".join([K3S_SUMS, "# comment", "", bsd, binary_mode, with_dir]))

    assert entries["k3s"].startswith("2f98a9f8")
    assert entries["k3s-airgap-images-amd64.tar.zst"].startswith("a197d79e")
    assert entries["install.yaml"] == "c" * 64
    assert entries["flux_2.9.4_linux_amd64.tar.gz"] == "d" * 64
    assert entries["manifests.tar.gz"] == "e" * 64
    assert parse_checksums("<html>Not Found</html>") == {}


def test_cache_admits_only_matching_bytes(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    good = tmp_path / "good"
    good.write_bytes(b"pinned bytes")
    digest = hashlib.sha256(b"pinned bytes").hexdigest()
    bad = tmp_path / "bad"
    bad.write_bytes(b"other bytes")

    with pytest.raises(VerificationError) as caught:
        cache.admit(bad, digest, label="thing")
    assert digest in caught.value.message
    assert hashlib.sha256(b"other bytes").hexdigest() in caught.value.message
    assert not bad.exists()
    assert cache.lookup(digest) is None

    path = cache.admit(good, digest, label="thing")
    assert path == tmp_path / "cache" / "sha256" / digest
    assert cache.lookup(digest) == path
    assert path.stat().st_mode & 0o777 == 0o644


def test_cache_drops_corrupted_entries(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    digest = hashlib.sha256(b"x").hexdigest()
    path = cache.path_for(digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"y")

    assert cache.lookup(digest) is None
    assert not path.exists()


def test_cache_remembers_built_artifacts_by_input_key(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    built = tmp_path / "archive.tar"
    built.write_bytes(b"archive")
    digest = hashlib.sha256(b"archive").hexdigest()
    key = "a" * 64

    assert cache.recall(key) is None
    path = cache.admit(built, digest, label="archive")
    cache.remember(key, digest)
    assert cache.recall(key) == path
    path.write_bytes(b"changed")
    assert cache.recall(key) is None


def test_cache_entries_are_named_by_their_verified_digest(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    candidate = tmp_path / "k3s"
    candidate.write_bytes(b"k3s")
    digest = hashlib.sha256(b"k3s").hexdigest()
    entry = cache.admit(candidate, digest, label="k3s")
    assert cache.digest_of(entry) == digest
    assert cache.digest_of(cache.lookup(digest) or tmp_path) == digest
    with pytest.raises(ValueError, match="not an entry of the artifact cache"):
        cache.digest_of(tmp_path / digest)
    with pytest.raises(ValueError, match="not a sha256"):
        cache.digest_of(entry.with_name("k3s"))


def _content(reference: str, blob_dir: Path) -> ImageContent:
    image = make_image(reference)
    (blob_dir / image.config_digest.removeprefix("sha256:")).write_bytes(image.config)
    (blob_dir / image.layer_digest.removeprefix("sha256:")).write_bytes(image.layer)
    return ImageContent(
        reference=reference,
        tag=reference.rsplit(":", 1)[1],
        manifest=image.manifest,
        manifest_media_type=OCI_MANIFEST,
        config_digest=image.config_digest,
        layer_digests=(image.layer_digest,),
    )


def test_archive_round_trip_is_reproducible(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    refs = ["ghcr.io/fluxcd/source-controller:v1.9.4", "ghcr.io/fluxcd/helm-controller:v1.6.3"]
    contents = [_content(r, blobs) for r in refs]

    first = write_archive(contents, blobs, tmp_path / "a.tar")
    second = write_archive(list(reversed(contents)), blobs, tmp_path / "b.tar")

    assert first == second == hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest()
    images = inspect_archive(tmp_path / "a.tar")
    assert [i.reference for i in images] == sorted(refs)
    assert {i.manifest_digest for i in images} == {c.manifest_digest for c in contents}
    assert {i.platform for i in images} == {"linux/amd64"}


def _rewrite(archive: Path, dest: Path, change: dict[str, bytes]) -> None:
    with tarfile.open(archive) as src, tarfile.open(dest, "w") as out:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            data = change.get(member.name, data)
            member.size = len(data)
            out.addfile(member, io.BytesIO(data) if member.isfile() else None)


def test_archive_with_a_corrupted_blob_is_refused(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    content = _content("ghcr.io/fluxcd/source-controller:v1.9.4", blobs)
    write_archive([content], blobs, tmp_path / "a.tar")
    layer = f"blobs/sha256/{content.layer_digests[0].removeprefix('sha256:')}"
    _rewrite(tmp_path / "a.tar", tmp_path / "bad.tar", {layer: b"tampered"})

    with pytest.raises(VerificationError, match=f"blob {content.layer_digests[0]} hashes to"):
        inspect_archive(tmp_path / "bad.tar")


def test_archive_whose_two_layouts_disagree_is_refused(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    content = _content("ghcr.io/fluxcd/source-controller:v1.9.4", blobs)
    write_archive([content], blobs, tmp_path / "a.tar")
    docker = [{"Config": "x", "RepoTags": [content.reference], "Layers": []}]
    _rewrite(
        tmp_path / "a.tar", tmp_path / "bad.tar", {"manifest.json": json.dumps(docker).encode()}
    )

    with pytest.raises(VerificationError, match=r"manifest\.json disagrees with index\.json"):
        inspect_archive(tmp_path / "bad.tar")


def _unzstd_raw(frame: bytes) -> bytes:
    """Decode the frames zstd_frame writes (raw blocks only), following RFC 8878."""
    assert frame[:4] == b"\x28\xb5\x2f\xfd"
    descriptor = frame[4]
    assert descriptor >> 6 == 3  # 8-byte frame content size
    assert descriptor & 0b0010_0000  # single segment
    size = int.from_bytes(frame[5:13], "little")
    out, offset = bytearray(), 13
    while True:
        header = int.from_bytes(frame[offset : offset + 3], "little")
        last, kind, length = header & 1, (header >> 1) & 3, header >> 3
        assert kind == 0
        out += frame[offset + 3 : offset + 3 + length]
        offset += 3 + length
        if last:
            break
    assert offset == len(frame)
    assert len(out) == size
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, 128 * 1024, 128 * 1024 + 1, 300_000])
def test_zstd_frames_hold_the_data(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert _unzstd_raw(zstd_frame(data)) == data


def test_standins_are_labelled_deterministic_and_pinned(tmp_path: Path) -> None:
    first = write_standins(tmp_path / "a", filler=1000)
    second = write_standins(tmp_path / "b", filler=1000)

    assert first.files == second.files
    # Each file is hashed once, as it is written: the digests are those of every file there.
    on_disk = {
        str(p.relative_to(first.directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(first.directory.rglob("*"))
        if p.is_file()
    }
    assert first.files == on_disk
    assert list(first.files) == sorted(on_disk)
    lock = load_lock(first.lock)
    assert lock.standin
    for pin in lock.files():
        path = first.directory / pin.component / pin.version / pin.name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pin.sha256
    binary = (first.directory / "k3s" / "v1.36.3+k3s1" / "k3s").read_bytes()
    assert b"STAND-IN" in binary
    assert b"STAND-IN" in (first.directory / "flux" / "2.9.4" / "install.yaml").read_bytes()
    assert "STAND-IN" in first.lock.read_text().splitlines()[0]
    sums = parse_checksums((first.directory / "k3s/v1.36.3+k3s1/sha256sum-amd64.txt").read_text())
    assert sums["k3s"] == lock.k3s.files["binary"].sha256
    archive = first.directory / "flux" / "2.9.4" / "flux-controller-images-amd64.tar"
    assert {i.reference: i.manifest_digest for i in inspect_archive(archive)} == {
        image.reference: image.digest for image in lock.images
    }


def test_standins_replace_only_a_mirror_they_wrote_and_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_standins(out, filler=10)
    (out / "extra").write_text("left by hand")
    with pytest.raises(OutputExistsError, match="holds a stand-in mirror already"):
        write_standins(out, filler=10)
    assert (out / "extra").is_file()
    write_standins(out, filler=10, force=True)
    assert not (out / "extra").exists()
    assert (out / "payload.lock.yaml").is_file()
    # The old set was renamed aside and then removed: nothing of it is left beside.
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("force", [False, True])
def test_standins_never_replace_a_directory_they_did_not_write(tmp_path: Path, force: bool) -> None:
    # --force used to delete any directory named, e.g. a home directory, with all it held.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds no stand-in mirror \(README-STANDIN\.txt\)"):
        write_standins(mine, filler=10, force=force)
    assert (mine / "keep").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_standins_refuse_a_file_where_the_directory_goes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("a file")
    with pytest.raises(ConfigError, match="is not a directory"):
        write_standins(out, filler=10, force=True)
    assert out.read_text() == "a file"


def test_standins_below_a_file_are_refused_as_given_wrong(tmp_path: Path) -> None:
    # It said "<file>: not writable: File exists" (exit 4).
    notes = tmp_path / "notes"
    notes.write_text("a file")
    with pytest.raises(ConfigError) as refused:
        write_standins(notes / "mirror", filler=10)
    assert refused.value.message == (
        f"{notes / 'mirror'}: {notes} is not a directory, so nothing can be written below it"
    )
    assert notes.read_text() == "a file"


def test_standins_make_their_directory_and_take_it_back_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "new" / "deeper" / "mirror"
    write_standins(out, filler=10)
    assert (out / "payload.lock.yaml").is_file()

    class Stopped(Exception):
        pass

    def stop(*args: object, **kwargs: object) -> None:
        raise Stopped

    monkeypatch.setattr(standin_artifacts, "_populate", stop)
    with pytest.raises(Stopped):
        write_standins(tmp_path / "other" / "deeper" / "mirror", filler=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_install_yaml_images_must_all_be_pinned(tmp_path: Path) -> None:
    from isobuild.artifacts.flux_install import check_images_pinned, referenced_images
    from isobuild.standin.artifacts import install_yaml_text

    result = write_standins(tmp_path / "s", filler=10)
    lock = load_lock(result.lock)
    refs = {i.name: i.reference for i in lock.images}
    cached = tmp_path / "cache" / "install.yaml"
    cached.parent.mkdir()
    cached.write_bytes(install_yaml_text("2.9.4", refs))
    check_images_pinned(lock, cached)

    extra = {**refs, "source-watcher": "ghcr.io/fluxcd/source-watcher:v2.2.3"}
    cached.write_bytes(install_yaml_text("2.9.4", extra))
    text = cached.read_text()
    assert referenced_images(text)["source-watcher"] == ("ghcr.io/fluxcd/source-watcher", "v2.2.3")
    with pytest.raises(
        VerificationError, match=r"source-watcher \(ghcr\.io/fluxcd/source-watcher:v2\.2\.3\)"
    ) as caught:
        check_images_pinned(lock, cached)
    assert caught.value.message.startswith(f"{cached}: Flux's install.yaml deploys images ")
    assert f"flux.images in {result.lock} does not pin" in caught.value.message

    moved = {**refs, "helm-controller": "ghcr.io/fluxcd/helm-controller:v9.9.9"}
    cached.write_bytes(install_yaml_text("2.9.4", moved))
    with pytest.raises(VerificationError, match="helm-controller"):
        check_images_pinned(lock, cached)

    cached.write_text("kind: [unclosed\n")
    with pytest.raises(PayloadError) as bad:
        check_images_pinned(lock, cached)
    assert re.fullmatch(
        rf"{re.escape(str(cached))}: not valid YAML \(line 2, column 1\): .+", bad.value.message
    )


def test_a_mirror_that_is_no_directory_says_which_it_is(tmp_path: Path) -> None:
    from isobuild.artifacts.fetch import MirrorDirSource

    with pytest.raises(ConfigError, match="--mirror directory does not exist"):
        MirrorDirSource(tmp_path / "absent")
    (tmp_path / "a-file").write_text("not a mirror")
    with pytest.raises(ConfigError, match="--mirror is not a directory"):
        MirrorDirSource(tmp_path / "a-file")
