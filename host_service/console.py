"""The local console banner: a managed block in /etc/issue with every address and the token.

Shown by getty on tty1 (and the other VTs); never written to the SSH motd or issue.net, so
the token is only visible to someone at the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from host_service import atomic, command
from host_service.command import CommandError
from host_service.settings import Settings

BEGIN = "=== Alga appliance setup ==="
END = "=== end of Alga appliance setup ==="


def setup_url(address: str, port: int) -> str:
    ip = ipaddress.ip_address(address)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"http://{host}:{port}/"


def render_block(
    addresses: Sequence[str], *, port: int, token: str, app_url: str | None = None
) -> str:
    # agetty expands backslash escapes in /etc/issue; nothing here may contain one.
    lines = [BEGIN]
    if app_url:
        lines.append(f"Application:  {app_url}")
        lines.append("Status page:")
    else:
        lines.append("Open the setup page from a browser on this network:")
    if addresses:
        lines.extend(f"    {setup_url(a, port)}" for a in addresses)
    else:
        lines.append("    (no network address yet: check the cable or DHCP)")
    lines.append(f"Setup token:  {token}")
    lines.append(END)
    return "\n".join(line.replace("\\", "/") for line in lines) + "\n"


def replace_block(issue: str, block: str) -> str:
    """``issue`` with our block replaced (or appended); everything else is kept as it was."""
    lines = issue.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == BEGIN)
        end = next(i for i in range(start, len(lines)) if lines[i].rstrip("\n") == END)
    except StopIteration:
        prefix = issue if issue.endswith("\n") or not issue else issue + "\n"
        return prefix + ("\n" if prefix and not prefix.endswith("\n\n") else "") + block + "\n"
    return "".join(lines[:start]) + block + "".join(lines[end + 1 :])


def app_url_if_live(selection_file: Path) -> str | None:
    try:
        return str(json.loads(selection_file.read_text(encoding="utf-8"))["app_url"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def refresh(
    issue_path: Path,
    *,
    addresses: Sequence[str],
    port: int,
    token: str,
    app_url: str | None,
    reload_getty: bool,
) -> bool:
    """Rewrite the block if it changed; returns whether it did."""
    try:
        current = issue_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    wanted = replace_block(
        current, render_block(addresses, port=port, token=token, app_url=app_url)
    )
    if wanted == current:
        return False
    atomic.write_text(issue_path, wanted, mode=0o644)
    if reload_getty and shutil.which("agetty"):
        # Running gettys reprint the new issue (util-linux >= 2.35).
        with contextlib.suppress(CommandError):
            command.run(["agetty", "--reload"], timeout=10, check=False)
    return True


def show(settings: Settings, *, addresses: Sequence[str], token: str) -> bool:
    """This appliance's banner: its port, the app URL once a release is live; getty reloads
    only on the real root (never for a ``--root`` tree)."""
    paths = settings.paths
    return refresh(
        paths.issue,
        addresses=addresses,
        port=settings.port,
        token=token,
        app_url=app_url_if_live(paths.selection_file),
        reload_getty=paths.root == Path("/"),
    )
