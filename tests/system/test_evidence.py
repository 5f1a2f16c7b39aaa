"""The failure evidence: what the suite saves when a test fails, taken from the live VM."""

from __future__ import annotations

from pathlib import Path

from tests.system import evidence
from tests.system.target import BootedTarget


def test_evidence_has_console_journal_and_state_without_the_token(
    appliance_target: BootedTarget, setup_token: str, tmp_path: Path
) -> None:
    saved = evidence.collect(
        appliance_target.machine,
        tmp_path,
        state_dir=appliance_target.paths["state"],
        secrets=(setup_token,),
        why="tests/system/test_evidence.py (a drill, nothing failed)",
    )
    names = {p.name for p in saved.iterdir()}
    assert any(n.startswith("console-") and n.endswith(".log") for n in names)
    assert {"journal-this-boot.txt", "systemctl-failed.txt", "units.txt"} <= names
    assert "state-bootstrap-state.json" in names
    assert "appliance-setup.service" in (saved / "journal-this-boot.txt").read_text()
    assert "setup-token" in (saved / "state-dir.txt").read_text()  # listed, never copied
    for path in saved.iterdir():
        assert setup_token not in path.read_text(errors="replace"), f"{path.name} leaks the token"
    # The serial console showed /etc/issue with the token: it is there, redacted.
    first_boot = appliance_target.machine.boots[0].serial_log.name
    console = (saved / first_boot).read_text(errors="replace")
    assert "<redacted: setup token>" in console
