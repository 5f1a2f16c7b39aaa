"""host_service.process.spawn on real programs: every way out of the block reaps the child."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from host_service.process import reap, spawn, tail
from isobuild import run as isobuild_run
from isobuild.errors import EnvironmentProblem, ToolError


def _gone(pid: int) -> bool:
    """True when ``pid`` is neither running nor a zombie of ours."""
    # A reaped child's pid is free (or reused by an unrelated process: not our child).
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_a_program_still_running_when_the_block_ends_is_terminated_and_reaped() -> None:
    with spawn(["sleep", "600"], grace=5) as proc:
        pid = proc.pid
        assert proc.poll() is None
    assert proc.returncode == -signal.SIGTERM
    assert _gone(pid)


def test_a_program_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    ready = "trap '' TERM; echo ready; while :; do sleep 1; done"
    with spawn(["sh", "-c", ready], stdout=subprocess.PIPE, grace=0.5) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"  # the trap is set before we leave
        pid = proc.pid
    assert proc.returncode == -signal.SIGKILL
    assert _gone(pid)


def test_an_exception_in_the_block_still_reaps_and_closes_the_pipes() -> None:
    started: list[subprocess.Popen[bytes]] = []

    def fail_inside() -> None:
        with spawn(["sleep", "600"], stdout=subprocess.PIPE, grace=0) as running:
            started.append(running)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    (proc,) = started
    pid = proc.pid
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout is not None
    assert proc.stdout.closed
    assert _gone(pid)


def test_a_program_that_finished_keeps_its_own_status() -> None:
    with spawn(["sh", "-c", "exit 3"]) as proc:
        assert proc.wait() == 3
    assert proc.returncode == 3
    assert reap(proc) == 3


def test_isobuild_spawn_names_a_missing_program_and_starts_nothing() -> None:
    with (
        pytest.raises(EnvironmentProblem, match="no-such-program-here: program not found"),
        isobuild_run.spawn(["no-such-program-here"]),
    ):
        pass


def test_isobuild_run_shows_the_same_tail_as_the_host_service() -> None:
    script = "for i in $(seq 1 100); do echo line$i >&2; done; exit 1"
    with pytest.raises(ToolError, match="exited with 1") as failure:
        isobuild_run.run(["sh", "-c", script])
    message = str(failure.value)
    shown = [line for line in message.splitlines() if line.startswith("line")]
    expected = tail("\n".join(f"line{i}" for i in range(1, 101))).splitlines()
    assert shown == expected
    assert shown[0] == "line61"
