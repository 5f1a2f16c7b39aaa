"""Host facts and process identity parsed from recorded /proc files."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_service import host, owner
from host_service.operate.host_probe import read_host
from host_service.state import Owner

ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
     +-- 10.0.0.0/8 2 0 2
           |-- 10.1.2.3
              /32 host LOCAL
"""
IF_INET6 = (
    "fd000000000000000000000000000002 04 40 00 82     eth0\n"
    "00000000000000000000000000000001 01 80 10 80       lo\n"
    "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n"
    "20010db8000000000000000000000010 04 40 00 80     eth0\n"
)
IPV6_ROUTE_DEFAULT = (
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth1\n"
)


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    (tmp_path / "net").mkdir()
    (tmp_path / "sys/kernel/random").mkdir(parents=True)
    (tmp_path / "sys/kernel/random/boot_id").write_text("boot-1\n")
    return tmp_path


def test_default_route_ipv4_then_ipv6(proc: Path) -> None:
    (proc / "net/route").write_text(ROUTE)
    assert host.LinuxHost(proc).default_route() == "eth0"
    (proc / "net/route").write_text(ROUTE.splitlines()[0] + "\n" + ROUTE.splitlines()[2] + "\n")
    (proc / "net/ipv6_route").write_text(IPV6_ROUTE_DEFAULT)
    assert host.LinuxHost(proc).default_route() == "eth1"
    (proc / "net/ipv6_route").write_text("")
    assert host.LinuxHost(proc).default_route() is None


def test_addresses_skip_loopback_and_link_local(proc: Path) -> None:
    (proc / "net/fib_trie").write_text(FIB_TRIE)
    (proc / "net/if_inet6").write_text(IF_INET6)
    assert host.LinuxHost(proc).addresses() == ["10.1.2.3", "192.0.2.2", "2001:db8::10", "fd00::2"]


def test_memory(proc: Path) -> None:
    (proc / "meminfo").write_text("MemTotal:       24683312 kB\nMemFree:  1 kB\n")
    assert host.LinuxHost(proc).memory_bytes() == 24683312 * 1024


def stat(pid: int, state: str, start: int) -> str:
    # Field 2 (comm) may hold spaces and parentheses: it is parsed from the last ')'.
    rest = " ".join(["1"] * 18)
    return f"{pid} (python3 (x) y) {state} {rest} {start} 3133440 387\n"


def test_process_identity_and_liveness(proc: Path) -> None:
    (proc / "4242").mkdir()
    (proc / "4242/stat").write_text(stat(4242, "S", 250605))
    assert owner.process_start(4242, proc) == 250605.0
    me = Owner(pid=4242, generation=1, started_at=250605.0, boot_id="boot-1")
    assert owner.is_alive(me, proc)
    # The same pid reused by another process, another boot, a zombie, or gone: not alive.
    assert not owner.is_alive(Owner(pid=4242, generation=1, started_at=1.0, boot_id="boot-1"), proc)
    assert not owner.is_alive(
        Owner(pid=4242, generation=1, started_at=250605.0, boot_id="boot-0"), proc
    )
    (proc / "4242/stat").write_text(stat(4242, "Z", 250605))
    assert not owner.is_alive(me, proc)
    assert owner.process_start(9999, proc) is None


@pytest.mark.parametrize(
    ("state", "expected"),
    [(None, None), (0, True), (1, True), (4, True), (host.TIME_ERROR, False)],
)
def test_the_kernel_clock_state_read_as_timedated_reads_it(
    state: int | None, expected: bool | None
) -> None:
    assert host.synchronized(state) is expected


@pytest.mark.parametrize(
    ("flag", "kernel", "expected"),
    [
        (True, None, True),  # systemd-timesyncd (the 24.04 default) says so
        (True, False, True),
        (False, True, True),  # chrony or ntpd keep the clock: only the kernel knows
        (False, False, False),
        (False, None, False),  # nothing can tell: shown as not synchronized
    ],
)
def test_the_clock_is_synchronized_by_the_flag_or_the_kernel(
    tmp_path: Path, flag: bool, kernel: bool | None, expected: bool
) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "uptime").write_text("5000.25 9000.00\n")
    (proc / "loadavg").write_text("0.50 0.25 0.10 1/200 4242\n")
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 500 kB\n")
    timesync = tmp_path / "synchronized"
    if flag:
        timesync.touch()
    facts = read_host(
        proc, volumes={"state": tmp_path}, timesync_flag=timesync,
        kernel_clock=lambda: kernel, addresses=lambda: ["192.0.2.2"],
    )  # fmt: skip
    assert facts["clock_synchronized"] is expected
    assert (facts["uptime_seconds"], facts["load"]) == (5000.25, [0.5, 0.25, 0.1])
    assert facts["memory"] == {"total": 1024000, "available": 512000}
    assert facts["addresses"] == ["192.0.2.2"]
