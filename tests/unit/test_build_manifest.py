"""build-manifest.json: the exact text for a known build (stable keys, files by path)."""

from __future__ import annotations

from pathlib import Path

from isobuild.build.manifest import FileRecord, render

GOLDEN = Path(__file__).parent / "golden" / "build-manifest.json"


def _render() -> str:
    return render(
        name="appliance",
        version="1.2.3",
        base={"name": "ubuntu.iso", "sha256": "b" * 64},
        config={"hostname": "node"},
        output={"name": "out.iso", "size": 10},
        files=[
            FileRecord(path="/nocloud/user-data", sha256="c" * 64, size=7, action="added"),
            FileRecord(path="/boot/grub/grub.cfg", sha256="d" * 64, size=3, action="changed"),
        ],
        tools={"xorriso": "1.5.6"},
        source_date_epoch=1700000000,
        extra={"channel": "stable"},
    )


def test_the_manifest_text_is_the_golden_file() -> None:
    assert _render() == GOLDEN.read_text()


def test_the_file_order_does_not_depend_on_the_order_given() -> None:
    files = [
        FileRecord(path=p, sha256="e" * 64, size=1, action="added") for p in ("/b", "/a", "/c")
    ]
    texts = {
        render(
            name="n",
            version="v",
            base={},
            config={},
            output={},
            files=order,
            tools={},
            source_date_epoch=0,
            extra={},
        )
        for order in (files, files[::-1], files[1:] + files[:1])
    }
    assert len(texts) == 1
