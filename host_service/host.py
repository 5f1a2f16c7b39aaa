"""Facts about the host for preflight and the console: DNS, route, disk, memory, clock.

The registry probe is not here: it goes through the registry client (``host_service.oci``).
"""

from __future__ import annotations

import ctypes
import ipaddress
import itertools
import shutil
import socket
import time
from pathlib import Path
from typing import Protocol

from host_service.errors import ExternalError

PROC = Path("/proc")
# adjtimex(2)'s answer while the kernel's clock is not synchronized (STA_UNSYNC and the other
# error states); an NTP daemon (systemd-timesyncd, chrony, ntpd) clears it once it syncs.
TIME_ERROR = 5
# struct timex is 208 bytes on x86-64 and arm64; zeroed, its modes field asks for nothing.
_TIMEX_BYTES = 512


class HostError(ExternalError):
    """A probe could not get an answer; the message says what was tried."""


class Host(Protocol):
    def resolve(self, hostname: str) -> list[str]:
        """Addresses for ``hostname``; raises HostError when DNS has none."""
        ...

    def default_route(self) -> str | None:
        """The interface of the IPv4 or IPv6 default route, or None."""
        ...

    def free_bytes(self, path: Path) -> int: ...

    def memory_bytes(self) -> int: ...

    def now(self) -> float: ...

    def addresses(self) -> list[str]:
        """Every global unicast address of the host, for the console banner."""
        ...

    def clock_synchronized(self) -> bool | None:
        """Whether the kernel calls its clock NTP-synchronized, whichever daemon keeps it;
        None when it cannot be asked."""
        ...


class LinuxHost:
    """The real host; ``proc`` is where procfs is read (tests pass recorded files)."""

    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc

    def resolve(self, hostname: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(hostname, 443, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise HostError(f"DNS lookup of {hostname} failed: {exc}") from exc
        return sorted({str(info[4][0]) for info in infos})

    def default_route(self) -> str | None:
        try:
            for line in (self.proc / "net/route").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
                    return fields[0]
        except OSError:
            pass
        try:
            for line in (self.proc / "net/ipv6_route").read_text().splitlines():
                fields = line.split()
                default = len(fields) == 10 and fields[0] == "0" * 32 and fields[1] == "00"
                if default and fields[9] != "lo":
                    return fields[9]
        except OSError:
            pass
        return None

    def free_bytes(self, path: Path) -> int:
        while not path.exists() and path != path.parent:
            path = path.parent
        return shutil.disk_usage(path).free

    def memory_bytes(self) -> int:
        for line in (self.proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
        return 0

    def now(self) -> float:
        return time.time()

    def addresses(self) -> list[str]:
        return [*_ipv4_local_addresses(self.proc), *_ipv6_global_addresses(self.proc)]

    def clock_synchronized(self) -> bool | None:
        return synchronized(kernel_clock_state())


def kernel_clock_state() -> int | None:
    """adjtimex(2) with nothing to change (no privilege needed): the clock state, or None."""
    try:
        adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):  # no libc to load, or no adjtimex in it
        return None
    timex = ctypes.create_string_buffer(_TIMEX_BYTES)
    state = int(adjtimex(timex))
    return None if state < 0 else state


def synchronized(state: int | None) -> bool | None:
    """The clock state read as systemd-timedated's NTPSynchronized reads it (pure)."""
    return None if state is None else state != TIME_ERROR


def _ipv4_local_addresses(proc: Path) -> list[str]:
    """Host addresses from /proc/net/fib_trie ("/32 host LOCAL" entries), loopback excluded."""
    try:
        lines = (proc / "net/fib_trie").read_text().splitlines()
    except OSError:
        return []
    found: list[str] = []
    for previous, line in itertools.pairwise(lines):
        if "/32 host LOCAL" in line:
            candidate = previous.strip().removeprefix("|-- ").strip()
            try:
                address = ipaddress.IPv4Address(candidate)
            except ValueError:
                continue
            if not address.is_loopback and not address.is_link_local:
                found.append(str(address))
    return sorted(set(found), key=lambda a: ipaddress.IPv4Address(a))


def _ipv6_global_addresses(proc: Path) -> list[str]:
    try:
        lines = (proc / "net/if_inet6").read_text().splitlines()
    except OSError:
        return []
    found: list[str] = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[5] == "lo":
            continue
        raw = fields[0]
        address = ipaddress.IPv6Address(":".join(raw[i : i + 4] for i in range(0, 32, 4)))
        if not (address.is_loopback or address.is_link_local):
            found.append(str(address))
    return sorted(set(found))
