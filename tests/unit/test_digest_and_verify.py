"""The base ISO digest cache and the SHA256SUMS parsing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from isobuild.digest import BackgroundDigest, DigestCache, sha256_and_md5, sha256_file
from isobuild.errors import ConfigError, VerificationError
from isobuild.iso.verify import check_digest, expected_from_sums, normalize_sha256


def test_digest_is_cached_by_path_size_and_mtime(tmp_path: Path) -> None:
    iso = tmp_path / "base.iso"
    iso.write_bytes(b"a" * 4096)
    cache = DigestCache(tmp_path / "cache")
    assert cache.get(iso) is None
    first = cache.digest(iso)
    assert first == hashlib.sha256(b"a" * 4096).hexdigest()
    # A cached answer is used as long as path, size and mtime hold: prove it with a
    # same-size, same-mtime edit that the cache cannot see.
    stat = iso.stat()
    iso.write_bytes(b"b" * 4096)
    os.utime(iso, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.digest(iso) == first
    os.utime(iso, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert cache.digest(iso) == hashlib.sha256(b"b" * 4096).hexdigest()


def test_background_digest_fills_the_cache(tmp_path: Path) -> None:
    iso = tmp_path / "base.iso"
    iso.write_bytes(b"x")
    cache = DigestCache(tmp_path / "cache")
    assert BackgroundDigest(cache, iso).result() == hashlib.sha256(b"x").hexdigest()
    assert cache.get(iso) == hashlib.sha256(b"x").hexdigest()


def test_background_digest_hands_its_error_to_the_caller(tmp_path: Path) -> None:
    unreadable = tmp_path / "dir.iso"
    unreadable.mkdir()
    cache = DigestCache(tmp_path / "cache")
    with pytest.raises(IsADirectoryError):
        # get() keys on stat, which works on a directory; reading it fails on the thread.
        BackgroundDigest(cache, unreadable).result()


def test_a_missing_base_is_the_digests_error_not_its_constructors(tmp_path: Path) -> None:
    # The CLI starts the digest before the build checks the base: the build's own check
    # then says what is wrong with it, and the digest only fails when asked.
    started = BackgroundDigest(DigestCache(tmp_path / "cache"), tmp_path / "missing.iso")
    with pytest.raises(FileNotFoundError):
        started.result()


def test_sha256_and_md5_in_one_read(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"hello")
    sha, md5, size = sha256_and_md5(f)
    assert sha == hashlib.sha256(b"hello").hexdigest()
    assert md5 == hashlib.md5(b"hello", usedforsecurity=False).hexdigest()
    assert size == 5


SUMS = (
    f"{'a' * 64} *ubuntu-24.04.3-desktop-amd64.iso\n"
    f"{'b' * 64} *ubuntu-24.04.3-live-server-amd64.iso\n"
)


def test_expected_digest_is_found_by_file_name() -> None:
    name = "ubuntu-24.04.3-live-server-amd64.iso"
    assert expected_from_sums(SUMS, Path("SHA256SUMS"), name) == "b" * 64
    assert expected_from_sums(SUMS.replace(" *", "  "), Path("SHA256SUMS"), name) == "b" * 64


def test_a_name_not_listed_is_refused() -> None:
    with pytest.raises(VerificationError, match=r"no entry for renamed\.iso"):
        expected_from_sums(SUMS, Path("SHA256SUMS"), "renamed.iso")


def test_mismatch_names_both_digests_and_the_source() -> None:
    with pytest.raises(VerificationError, match=r"expected a+ \(--sha256\), got b+"):
        check_digest("b" * 64, "a" * 64, Path("x.iso"), "--sha256")


def test_pinned_digest_format() -> None:
    assert normalize_sha256(" " + "A" * 64 + "\n", "--sha256") == "a" * 64
    with pytest.raises(ConfigError, match="64 hex digits"):
        normalize_sha256("abc", "--sha256")


@pytest.mark.parametrize("size", [0, 5000, (32 << 20) + 1, 3 * (32 << 20) + 12345])
def test_sha256_file_matches_hashlib_and_reports_its_progress(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f"
    data = os.urandom(size)
    path.write_bytes(data)
    seen: list[int] = []
    assert sha256_file(path, seen.append) == hashlib.sha256(data).hexdigest()
    assert seen == sorted(seen)
    assert (seen[-1] if seen else 0) == size
