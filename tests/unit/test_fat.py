"""The read-only FAT reader on a recorded ESP image (tests/data/efi/make_fixtures.py)."""

from __future__ import annotations

import gzip

import pytest

from isobuild.iso.fat import FatError, FatImage
from tests.conftest import TESTS_DIR

EFI = TESTS_DIR / "data" / "efi"


@pytest.fixture
def esp() -> FatImage:
    return FatImage(gzip.decompress((EFI / "esp.img.gz").read_bytes()))


def test_lists_nested_files_with_long_and_short_names(esp: FatImage) -> None:
    assert esp.kind == 12
    assert [f.path for f in esp.files()] == [
        "/EFI/boot/bootx64.efi",
        "/EFI/debian/a-rather-long-file-name.efi",
        "/EFI/debian/README.TXT",
    ]


def test_reads_each_file_byte_for_byte(esp: FatImage) -> None:
    files = {f.path: f for f in esp.files()}
    assert esp.read(files["/EFI/boot/bootx64.efi"]) == (EFI / "signed.efi").read_bytes()
    long_name = files["/EFI/debian/a-rather-long-file-name.efi"]
    assert esp.read(long_name) == (EFI / "unsigned.efi").read_bytes()
    assert esp.read(files["/EFI/debian/README.TXT"]) == (EFI / "test-signer.crt").read_bytes()


def test_refuses_what_is_not_fat() -> None:
    with pytest.raises(FatError, match="0x55AA"):
        FatImage(b"\0" * 4096)


def test_a_broken_cluster_chain_is_an_error_not_garbage(esp: FatImage) -> None:
    image = bytearray(gzip.decompress((EFI / "esp.img.gz").read_bytes()))
    broken = FatImage(bytes(image))
    target = next(f for f in broken.files() if f.path.endswith("bootx64.efi"))
    # Point the file's first cluster past the end of the file system.
    bad = type(target)(path=target.path, size=target.size, first_cluster=0xFF0)
    with pytest.raises(FatError):
        broken.read(bad)
