"""Regenerate the recorded EFI test binaries: python3 tests/data/efi/make_fixtures.py

A minimal PE32+ EFI application (code + .sbat section) written here, signed with sbsign by a
throwaway key made for the occasion (its private half is deleted), and a tampered copy.
Needs openssl and sbsigntool. The outputs are committed; the unit tests only read them.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SBAT = b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
SBAT += b"isobuild-test,2,isobuild,isobuild-test,1,https://example.invalid\n"


def minimal_pe() -> bytes:
    text = b"\x31\xc0\xc3".ljust(0x200, b"\xcc")  # xor eax,eax; ret
    sbat = SBAT.ljust(0x200, b"\0")
    dos = b"MZ".ljust(0x3C, b"\0") + struct.pack("<I", 0x40)
    coff = struct.pack("<4sHHIIIHH", b"PE\0\0", 0x8664, 2, 0, 0, 0, 240, 0x0206)
    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        0x20B,
        2,
        30,
        0x200,
        0x200,
        0,
        0x1000,
        0x1000,  # magic .. base of code
        0,
        0x1000,
        0x200,  # image base, section/file alignment
        0,
        0,
        0,
        0,
        0,
        0,  # OS/image/subsystem versions
        0,
        0x3000,
        0x200,
        0,  # win32 version, size of image, size of headers, checksum
        10,
        0,  # EFI application, dll characteristics
        0x10000,
        0x1000,
        0x10000,
        0x1000,
        0,
        16,
    )
    optional += b"\0" * (16 * 8)
    sections = struct.pack(
        "<8sIIIIIIHHI", b".text", 0x200, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020
    )
    sections += struct.pack(
        "<8sIIIIIIHHI", b".sbat", len(SBAT), 0x2000, 0x200, 0x400, 0, 0, 0, 0, 0x40000040
    )
    headers = (dos + coff + optional + sections).ljust(0x200, b"\0")
    return headers + text + sbat


def main() -> None:
    unsigned = HERE / "unsigned.efi"
    unsigned.write_bytes(minimal_pe())
    with tempfile.TemporaryDirectory() as tmp:
        key, cert = Path(tmp) / "key.pem", HERE / "test-signer.crt"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-days",
                "36500",
                "-subj",
                "/CN=isobuild test signer",
                "-addext",
                "extendedKeyUsage=codeSigning",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sbsign", "--key", key, "--cert", cert, "--output", HERE / "signed.efi", unsigned],
            check=True,
            capture_output=True,
        )
    tampered = bytearray((HERE / "signed.efi").read_bytes())
    tampered[0x200] ^= 0xFF  # first code byte: the signature no longer covers the file
    (HERE / "tampered.efi").write_bytes(bytes(tampered))
    esp_image()


def esp_image() -> None:
    """A 1 MiB FAT12 ESP (gzip'd): nested directories, long and 8.3 names, a signed binary."""
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "esp.img"
        subprocess.run(
            ["mkfs.vfat", "-C", "-n", "ESP", "-i", "2404EF15", image, "1024"],
            check=True,
            capture_output=True,
        )
        for directory in ("::/EFI", "::/EFI/boot", "::/EFI/debian"):
            subprocess.run(["mmd", "-i", image, directory], check=True)
        for source, target in (
            (HERE / "signed.efi", "::/EFI/boot/bootx64.efi"),
            (HERE / "unsigned.efi", "::/EFI/debian/a-rather-long-file-name.efi"),
            (HERE / "test-signer.crt", "::/EFI/debian/README.TXT"),
        ):
            subprocess.run(["mcopy", "-i", image, "-m", source, target], check=True)
        data = image.read_bytes()
    (HERE / "esp.img.gz").write_bytes(gzip.compress(data, mtime=0))


if __name__ == "__main__":
    main()
