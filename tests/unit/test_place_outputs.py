"""isobuild.build.steps.place_outputs: the finished files move into place whole, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.build.steps import place_outputs

NAMES = ("appliance.iso", "appliance.iso.sha256", "build-manifest.json")


def _sets(tmp_path: Path) -> tuple[dict[Path, Path], Path, Path]:
    out, work = tmp_path / "out", tmp_path / "out" / ".isobuild-x"
    work.mkdir(parents=True)
    outputs = {}
    for name in NAMES:
        (out / name).write_text(f"old {name}")
        (work / name).write_text(f"new {name}")
        outputs[work / name] = out / name
    return outputs, out, work


def test_the_new_set_replaces_the_old_one_iso_last(tmp_path: Path) -> None:
    outputs, out, work = _sets(tmp_path)
    place_outputs(outputs, aside=work / "replaced")
    assert {n: (out / n).read_text() for n in NAMES} == {n: f"new {n}" for n in NAMES}
    assert sorted(p.name for p in (work / "replaced").iterdir()) == sorted(NAMES)


def test_a_stop_half_way_puts_the_old_set_back_whole(tmp_path: Path) -> None:
    outputs, out, work = _sets(tmp_path)
    (work / "appliance.iso").unlink()  # the ISO's rename, which comes last, fails
    with pytest.raises(FileNotFoundError):
        place_outputs(outputs, aside=work / "replaced")
    assert {n: (out / n).read_text() for n in NAMES} == {n: f"old {n}" for n in NAMES}
    assert sorted(p.name for p in out.iterdir()) == sorted([*NAMES, work.name])


def test_with_nothing_to_replace_nothing_is_moved_aside(tmp_path: Path) -> None:
    outputs, out, work = _sets(tmp_path)
    for name in NAMES:
        (out / name).unlink()
    place_outputs(outputs, aside=work / "replaced")
    assert {n: (out / n).read_text() for n in NAMES} == {n: f"new {n}" for n in NAMES}
    assert list((work / "replaced").iterdir()) == []
