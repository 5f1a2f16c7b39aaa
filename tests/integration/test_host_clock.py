"""The kernel's clock state through the host service's adjtimex(2) call, checked against the
raw system call on this machine's real kernel."""

from __future__ import annotations

import ctypes
import platform

import pytest

from host_service import host

# adjtimex's system call number where it is known here; the libc wrapper is what runs.
SYS_ADJTIMEX = {"x86_64": 159, "aarch64": 171}


def test_the_clock_state_is_what_the_kernel_answers() -> None:
    number = SYS_ADJTIMEX.get(platform.machine())
    if number is None:
        pytest.skip(f"no adjtimex system call number recorded for {platform.machine()}")
    timex = ctypes.create_string_buffer(512)  # zeroed: modes 0, nothing changed
    raw = ctypes.CDLL(None, use_errno=True).syscall(number, timex)
    assert raw >= 0, ctypes.get_errno()
    state = host.kernel_clock_state()
    assert state == raw
    assert host.LinuxHost().clock_synchronized() is (raw != host.TIME_ERROR)
