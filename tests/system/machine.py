"""A booted appliance disk under QEMU: SSH and HTTP forwards, readiness, reboot, evidence."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import paramiko

from isobuild.boot.qemu import Forward, Guest, GuestSpec
from isobuild.errors import BootError
from tests.ports import free_port
from tests.system.ssh_keys import KeyPair, PinnedHostKey
from tests.waiting import WaitTimedOut, wait_until

log = logging.getLogger(__name__)

SSH_PORT = 22
CONNECT_RETRY_SECONDS = 2.0


@dataclass(frozen=True, kw_only=True)
class BootRecord:
    """One boot of the machine: its console log and how long SSH took to answer."""

    label: str
    serial_log: Path
    seconds_to_ssh: float
    seconds_to_ready: float
    system_state: str


class Machine:
    """Boots ``spec`` (a disk, with or without -kernel) with SSH and HTTP forwarded.

    Each boot is a new QEMU process on the same disk and the same host ports; a guest
    reboot ends the process (``-no-reboot``), so ``reboot()`` is a real power cycle.
    """

    def __init__(
        self,
        spec: GuestSpec,
        *,
        workdir: Path,
        key: KeyPair,
        host_key: str | None,
        http_port: int,
        boot_timeout: float,
        username: str = "root",
        sudo_password: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.username = username
        self.sudo_password = sudo_password
        self.key = key
        self.host_key = host_key
        self.boot_timeout = boot_timeout
        self.ssh_port = free_port()
        self.http_port = free_port()
        self.spec = dataclasses.replace(
            spec,
            network=True,
            forwards=(
                Forward(host_port=self.ssh_port, guest_port=SSH_PORT),
                Forward(host_port=self.http_port, guest_port=http_port),
            ),
        )
        self.guest: Guest | None = None
        self.boots: list[BootRecord] = []
        self._client: paramiko.SSHClient | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def boot(self, label: str) -> BootRecord:
        """Start QEMU and wait until SSH answers and systemd has finished starting up."""
        serial_log = self.workdir / f"console-{len(self.boots) + 1}-{label}.log"
        self.guest = Guest(dataclasses.replace(self.spec, serial_log=serial_log))
        self.guest.start()
        self._client = self._connect(self.guest)
        to_ssh = self.guest.elapsed
        if self.username != "root":
            self._become_root()
        # is-system-running --wait returns once the boot transaction is done, whether every
        # unit started (running) or some failed (degraded); the tests judge which.
        state = self.run("systemctl is-system-running --wait", timeout=self.boot_timeout)
        record = BootRecord(
            label=label,
            serial_log=serial_log,
            seconds_to_ssh=to_ssh,
            seconds_to_ready=self.guest.elapsed,
            system_state=state.stdout.strip(),
        )
        self.boots.append(record)
        log.info(
            "boot %s: ssh after %.1f s, %s after %.1f s",
            label,
            to_ssh,
            record.system_state,
            record.seconds_to_ready,
        )
        return record

    def _connect(self, guest: Guest) -> paramiko.SSHClient:
        last: Exception | None = None

        def connected() -> paramiko.SSHClient | None:
            nonlocal last
            if not guest.running():
                raise BootError(
                    f"the guest stopped before SSH answered (console: {guest.spec.serial_log})"
                )
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(PinnedHostKey(self.host_key))
            try:
                client.connect(
                    "127.0.0.1",
                    port=self.ssh_port,
                    username=self.username,
                    pkey=self.key.pkey(),
                    timeout=10,
                    banner_timeout=10,
                    auth_timeout=10,
                    allow_agent=False,
                    look_for_keys=False,
                )
            except (paramiko.SSHException, OSError, EOFError) as exc:
                last = exc
                client.close()
                return None
            return client

        try:
            return wait_until(
                connected,
                self.boot_timeout,
                f"SSH on 127.0.0.1:{self.ssh_port}",
                interval=CONNECT_RETRY_SECONDS,
            )
        except WaitTimedOut as exc:
            raise BootError(
                f"{exc} (last error: {last}; console: {guest.spec.serial_log})"
            ) from exc

    def _become_root(self) -> None:
        """A disk the real installer made has no root login: sudo our key into root's."""
        assert self._client is not None
        assert self.guest is not None
        if self.sudo_password is None:
            raise BootError(
                f"cannot become root on the guest: no sudo password for {self.username}"
            )
        stdin, stdout, stderr = self._client.exec_command(
            f"sudo -S -p '' install -D -m 600 /home/{self.username}/.ssh/authorized_keys "
            "/root/.ssh/authorized_keys",
            timeout=60,
        )
        stdin.write(self.sudo_password + "\n")
        stdin.flush()
        if stdout.channel.recv_exit_status() != 0:
            raise BootError(f"sudo as {self.username} failed: {stderr.read().decode()[-300:]}")
        self._close()
        self.username = "root"
        self._client = self._connect(self.guest)

    def run(self, command: str, *, timeout: float = 120.0) -> CommandOutcome:
        """Run a shell command in the guest as root (for the fixtures, not the tests)."""
        if self._client is None:
            raise BootError("the machine is not booted")
        _stdin, stdout, stderr = self._client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        return CommandOutcome(rc=stdout.channel.recv_exit_status(), stdout=out, stderr=err)

    def reboot(self, label: str) -> BootRecord:
        """A guest-initiated reboot (clean shutdown), then a fresh boot of the same disk."""
        assert self.guest is not None, "not booted"
        guest = self.guest
        # The connection may drop before the command reports back.
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            self.run("systemctl reboot", timeout=15)
        self._close()
        guest.wait_exit(timeout=self.boot_timeout)
        return self.boot(label)

    def stop(self) -> None:
        """Power off cleanly when possible (the journal is flushed), else end QEMU."""
        if self.guest is None:
            return
        if self.guest.running() and self._client is not None:
            try:
                self.run("systemctl poweroff", timeout=15)
                self.guest.wait_exit(timeout=60)
            except (paramiko.SSHException, OSError, EOFError, BootError):
                pass
        self._close()
        self.guest.stop()

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass(frozen=True, kw_only=True)
class CommandOutcome:
    rc: int
    stdout: str
    stderr: str
