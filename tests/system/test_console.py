"""The setup token: on the local console (/etc/issue, with the setup URL), never over SSH."""

from __future__ import annotations

import paramiko
import testinfra.host

from tests.system.target import BootedTarget
from tests.waiting import wait_until

GUEST_ADDRESS = "10.0.2.15"  # QEMU user networking's DHCP lease for the first guest NIC
# The banner timer rewrites the block when addresses change (OnBootSec=15s, then every 30 s):
# a guest whose DHCP lease came after the first banner shows the URL within this wait.
BANNER_REFRESH_WAIT = 90.0
LOGIN_WAIT_SECONDS = 60.0  # the loop ends at the prompt; TCG on a busy machine is slow


def _wait_for_text(host: testinfra.host.Host, command: str, wanted: list[str]) -> str:
    text = ""

    def shown() -> bool:
        nonlocal text
        text = str(host.check_output(command))
        return all(w in text for w in wanted)

    wait_until(shown, BANNER_REFRESH_WAIT, lambda: f"{wanted} in `{command}`: {text!r}", interval=3)
    return text


def test_token_file_is_root_only(host: testinfra.host.Host, appliance_target: BootedTarget) -> None:
    token = host.file(f"{appliance_target.paths['state']}/setup-token")
    assert token.exists
    assert (f"{token.mode:04o}", token.user, token.group) == ("0600", "root", "root")


def test_issue_shows_setup_url_and_token(
    host: testinfra.host.Host, appliance_target: BootedTarget, setup_token: str
) -> None:
    url = f"http://{GUEST_ADDRESS}:{appliance_target.config.appliance.host_service.port}/"
    issue = _wait_for_text(host, "cat /etc/issue", [setup_token, url])
    assert setup_token in issue
    assert url in issue


def test_tty1_shows_setup_url_and_token(
    host: testinfra.host.Host, appliance_target: BootedTarget, setup_token: str
) -> None:
    # /dev/vcs1 is the text on tty1's screen: what a technician at the machine reads.
    url = f"http://{GUEST_ADDRESS}:{appliance_target.config.appliance.host_service.port}/"
    screen = _wait_for_text(host, "cat /dev/vcs1", [setup_token, url])
    assert setup_token in screen
    assert url in screen


def test_ssh_login_does_not_show_the_token(
    host: testinfra.host.Host, appliance_target: BootedTarget, setup_token: str
) -> None:
    for path in ("/etc/motd", "/run/motd.dynamic", "/etc/issue.net"):
        f = host.file(path)
        if f.exists:
            assert setup_token not in f.content_string, f"{path} shows the setup token"
    assert setup_token not in host.run("run-parts /etc/update-motd.d 2>/dev/null").stdout
    assert setup_token not in _interactive_login_text(appliance_target)


def _interactive_login_text(target: BootedTarget) -> str:
    """Everything an SSH user sees on an interactive login: banner, motd, first prompt."""
    machine = target.machine
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=machine.ssh_port,
        username="root",
        pkey=machine.key.pkey(),
        allow_agent=False,
        look_for_keys=False,
        timeout=30,
    )
    try:
        transport = client.get_transport()
        assert transport is not None
        banner = transport.get_banner() or b""
        shell = client.invoke_shell()
        # Read until the shell prompt (root's "# ") follows the motd, or the wait runs out.
        seen = b""

        def at_prompt() -> bool:
            nonlocal seen
            while shell.recv_ready():
                seen += shell.recv(65536)
            return seen.rstrip(b" ").endswith(b"#")

        wait_until(
            at_prompt,
            LOGIN_WAIT_SECONDS,
            lambda: f"a shell prompt after login: {seen[-200:]!r}",
            interval=0.1,
        )
        shell.close()
        text = (banner + seen).decode(errors="replace")
        assert text.strip(), "an interactive SSH login showed nothing at all"
        return text
    finally:
        client.close()
