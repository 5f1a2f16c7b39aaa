"""``python3 -m host_service`` as a process: serve under --root, one instance per state
directory, console banner, clear errors and exit codes for bad settings and busy ports."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import require_root
from tests.fixtures.host_service import PROJECT, builder_document
from tests.ports import free_port
from tests.waiting import wait_until


def host_service(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host_service", *args], cwd=PROJECT, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


def wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    def healthy() -> bool:
        assert proc.poll() is None, proc.communicate()
        try:
            return requests.get(url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(healthy, 30, f"{url}/healthz to answer")


def test_serve_under_a_root_then_stop(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "host_service", "--root", str(tmp_path), "--listen",
         f"127.0.0.1:{port}"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        state = tmp_path / "var/lib/alga-appliance"
        assert state.stat().st_mode & 0o777 == 0o700
        token = (state / "setup-token").read_text().strip()
        assert (state / "setup-token").stat().st_mode & 0o777 == 0o600
        issue = (tmp_path / "etc/issue").read_text()
        assert f"Setup token:  {token}" in issue
        assert ":8080/" in issue
        assert requests.get(url + "/api/status", timeout=5).status_code == 401
        # A second service on the same state directory refuses to start.
        second = host_service("--root", str(tmp_path), "--listen", f"127.0.0.1:{free_port()}")
        assert second.returncode == 4
        assert "another host service process is running" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert token not in err  # the token is never logged


def test_console_banner_command(tmp_path: Path) -> None:
    issue = tmp_path / "etc/issue"
    issue.parent.mkdir(parents=True)
    issue.write_text("Ubuntu 24.04 LTS \\n \\l\n\n")
    result = host_service("console-banner", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = issue.read_text()
    assert text.startswith("Ubuntu 24.04 LTS \\n \\l\n")
    assert "=== Alga appliance setup ===" in text
    token = (tmp_path / "var/lib/alga-appliance/setup-token").read_text().strip()
    assert token in text
    assert host_service("console-banner", "--root", str(tmp_path)).returncode == 0
    assert issue.read_text() == text  # unchanged when nothing changed


def test_bad_settings_name_the_key(tmp_path: Path) -> None:
    document = builder_document()
    document["appliance"]["k3s"]["write_kubeconfig_mode"] = "0666"
    settings = tmp_path / "build-info.json"
    settings.write_text(json.dumps(document))
    result = host_service("--root", str(tmp_path), "--settings", str(settings))
    assert result.returncode == 2
    assert f"{settings}: appliance.k3s.write_kubeconfig_mode: 0666 lets others read" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr

    # An operator's typo in the hand-edited file: refused by name, with the key it resembles.
    document["appliance"]["k3s"]["write_kubeconfig_mode"] = "0600"
    document["appliance"]["registry"]["ca_bundel"] = "/etc/alga-appliance/registry-ca.pem"
    settings.write_text(json.dumps(document))
    typo = host_service("--root", str(tmp_path), "--settings", str(settings))
    assert typo.returncode == 2
    assert typo.stderr.startswith(
        f"error: {settings}: appliance.registry.ca_bundel: unknown key (did you mean "
        "'ca_bundle'?)\nhint: "
    )
    assert "Traceback" not in typo.stderr

    missing = host_service("--root", str(tmp_path), "--settings", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "settings file not found" in missing.stderr


def test_busy_port_and_bad_listen(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = host_service("--root", str(tmp_path), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 4
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    for wrong in ("nowhere", "[::1", "::1:8080", "[::1]8080", "[not-v6]:80", "127.0.0.1:65536"):
        # "[::1" was taken as the host ":" on port 1 and failed later: cannot listen, exit 4.
        bad = host_service("--root", str(tmp_path), "--listen", wrong)
        assert bad.returncode == 2, (wrong, bad.stderr)
        assert f"--listen {wrong!r}: expected ADDR:PORT, [IPv6]:PORT or :PORT" in bad.stderr


def test_a_file_in_the_state_path_is_named_with_its_cure(tmp_path: Path) -> None:
    # The hint was the full-disk one (free space, remount, the service restarting).
    root = tmp_path / "root"
    root.write_text("a file, given as --root")
    done = host_service("reset-token", "--root", str(root))
    assert done.returncode == 4, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {root}/var/lib/alga-appliance: Not a directory",
        "hint: a file stands where the path needs a directory: move it away (or check --root)",
    ]


def test_a_full_state_disk_at_start_is_one_clear_error_not_a_traceback(tmp_path: Path) -> None:
    require_root("mounts a small tmpfs as the state directory to fill it")
    state = tmp_path / "var/lib/alga-appliance"
    state.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(state)], check=True)
    try:
        # Written until ENOSPC: the disk is full now.
        with contextlib.suppress(OSError), (state / "filler").open("wb", buffering=0) as filler:
            while True:
                filler.write(b"\0" * 4096)
        done = host_service("--root", str(tmp_path), "--listen", f"127.0.0.1:{free_port()}")
    finally:
        subprocess.run(["umount", str(state)], check=True)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert str(state) in errors[0]
    assert "No space left on device" in errors[0]
    assert "hint: free space on" in done.stderr
