"""What a failed run leaves behind: consoles, journals, unit and host-service state.

Secrets stay on the guest: the setup token, session key and operator inputs are never
copied (their paths are listed, not read), and the collected text is checked for the token.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from pathlib import Path

import paramiko

from isobuild.errors import BootError
from tests.system.machine import Machine

log = logging.getLogger(__name__)

UNITS = ("appliance-setup.service", "appliance-console-banner.service", "k3s.service")
# Only these state files are copied: progress, not secrets.
STATE_FILES = ("bootstrap-state.json", "release-selection.json")


def _guest_commands(state_dir: str) -> dict[str, str]:
    units = " ".join(UNITS)
    return {
        "journal-this-boot.txt": "journalctl -b --no-pager -o short-precise",
        "journal-previous-boot.txt": "journalctl -b -1 --no-pager -o short-precise 2>&1 || true",
        "systemctl-failed.txt": "systemctl --failed --no-pager --all",
        "units.txt": f"systemctl status --no-pager --full {units} 2>&1 || true",
        "boots.txt": "journalctl --list-boots --no-pager 2>&1 || true",
        "state-dir.txt": f"ls -la {state_dir} 2>&1 || true",
        "network.txt": "ip addr; ip route; ss -ltnp",
        "boot-time.txt": "systemd-analyze 2>&1; systemd-analyze blame --no-pager 2>&1 | head -40",
        **{
            f"state-{name}": f"cat {state_dir}/{name} 2>/dev/null || echo '(none)'"
            for name in STATE_FILES
        },
    }


def collect(
    machine: Machine | None,
    dest: Path,
    *,
    state_dir: str,
    secrets: tuple[str, ...] = (),
    why: str = "",
) -> Path:
    """Write everything worth reading after a failure into ``dest/<timestamp>``."""
    out = dest / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    (out / "why.txt").write_text(why + "\n")
    if machine is not None:
        for log_file in machine.workdir.glob("console-*.log*"):
            shutil.copy2(log_file, out / log_file.name)
        (out / "boots.json").write_text(
            json.dumps([b.__dict__ for b in machine.boots], default=str, indent=2) + "\n"
        )
        if machine.guest is not None and machine.guest.running():
            for name, command in _guest_commands(state_dir).items():
                with contextlib.suppress(paramiko.SSHException, OSError, EOFError, BootError):
                    result = machine.run(command, timeout=60)
                    (out / name).write_text(result.stdout + result.stderr)
    for path in out.iterdir():
        text = path.read_text(errors="replace")
        for secret in secrets:
            if secret and secret in text:
                path.write_text(text.replace(secret, "<redacted: setup token>"))
    log.warning("system suite: evidence saved in %s", out)
    return out
