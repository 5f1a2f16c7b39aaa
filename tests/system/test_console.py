"""The setup token: on the local console (/etc/issue, with the setup URL), never over SSH."""

from __future__ import annotations

import time

import paramiko
import testinfra.host

from tests.system.target import BootedTarget

GUEST_ADDRESS = "10.0.2.15"  # QEMU user networking's DHCP lease for the first guest NIC
LOGIN_WAIT_SECONDS = 3.0


def test_token_file_is_root_only(host: testinfra.host.Host, appliance_target: BootedTarget) -> None:
    token = host.file(f"{appliance_target.paths['state']}/setup-token")
    assert token.exists
    assert (f"{token.mode:04o}", token.user, token.group) == ("0600", "root", "root")


def test_issue_shows_setup_url_and_token(
    host: testinfra.host.Host, appliance_target: BootedTarget, setup_token: str
) -> None:
    port = appliance_target.config.appliance.host_service.port
    issue = host.file("/etc/issue").content_string
    assert setup_token in issue
    assert f"http://{GUEST_ADDRESS}:{port}/" in issue


def test_tty1_shows_setup_url_and_token(
    host: testinfra.host.Host, appliance_target: BootedTarget, setup_token: str
) -> None:
    # /dev/vcs1 is the text on tty1's screen: what a technician at the machine reads.
    port = appliance_target.config.appliance.host_service.port
    screen = host.check_output("cat /dev/vcs1")
    assert setup_token in screen
    assert f"http://{GUEST_ADDRESS}:{port}/" in screen


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
        deadline = time.monotonic() + LOGIN_WAIT_SECONDS
        seen = b""
        while time.monotonic() < deadline:
            if shell.recv_ready():
                seen += shell.recv(65536)
            else:
                time.sleep(0.1)
        shell.close()
        text = (banner + seen).decode(errors="replace")
        assert text.strip(), "an interactive SSH login showed nothing at all"
        return text
    finally:
        client.close()
