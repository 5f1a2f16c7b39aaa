"""What every step shares: StepContext.poll and sleep on a fake clock (what is reported, how
long it waits, when it gives up, a stop request), StepFailed, and the blocker wording."""

from __future__ import annotations

import dataclasses
import errno
import os
import threading
from pathlib import Path

import pytest

from host_service.command import CommandError
from host_service.errors import ServiceError
from host_service.settings import Timeouts
from host_service.state import Blocker, Step
from host_service.steps.blockers import Wording, WordingTable, disk_failure, to_blocker
from host_service.steps.context import Cancelled, StepContext, StepFailed
from tests.unit.test_host_steps import context


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ClockEvent(threading.Event):
    """A stop event whose waits advance the fake clock instead of blocking."""

    def __init__(self, clock: FakeClock, *, stop_after: int | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float | None] = []
        self.stop_after = stop_after

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if len(self.waits) > 50:
            raise AssertionError("poll never gave up")
        if self.stop_after is not None and len(self.waits) > self.stop_after:
            return True
        self.clock.now += timeout or 0.0
        return False


def fake_context(
    tmp_path: Path, *, poll_interval: float, stop_after: int | None = None
) -> tuple[StepContext, ClockEvent, list[tuple[str, str | None]]]:
    ctx, reports = context(tmp_path)
    clock = FakeClock()
    stopping = ClockEvent(clock, stop_after=stop_after)
    ctx = dataclasses.replace(
        ctx,
        settings=dataclasses.replace(ctx.settings, timeouts=Timeouts(poll_interval=poll_interval)),
        clock=clock,
        stopping=stopping,
    )
    return ctx, stopping, reports


def timed_out(last: str) -> StepFailed:
    return StepFailed(f"gave up: {last}", cause="c", next_step="n")


def test_poll_reports_each_new_waiting_message_once_and_returns_the_value(
    tmp_path: Path,
) -> None:
    ctx, stopping, reports = fake_context(tmp_path, poll_interval=1.0)
    answers = iter([(None, ""), (None, "a"), (None, "a"), (None, "b"), (7, "ignored")])
    assert ctx.poll(lambda: next(answers), timeout=60, on_timeout=timed_out) == 7
    assert reports == [("a", None), ("b", None)]
    assert stopping.waits == [1.0, 1.0, 1.0, 1.0]


def test_poll_a_false_value_is_a_value(tmp_path: Path) -> None:
    ctx, _, reports = fake_context(tmp_path, poll_interval=1.0)
    assert ctx.poll(lambda: (False, "x"), timeout=0, on_timeout=timed_out) is False
    assert reports == []


def test_poll_waits_the_interval_then_the_rest_and_gives_up_at_the_deadline(
    tmp_path: Path,
) -> None:
    ctx, stopping, reports = fake_context(tmp_path, poll_interval=2.0)
    with pytest.raises(StepFailed, match=r"^gave up: still waiting$"):
        ctx.poll(lambda: (None, "still waiting"), timeout=4.5, on_timeout=timed_out)
    # Checked at 0, 2, 4 and 4.5 s: the last sleep is cut to the deadline, never past it.
    assert stopping.waits == [2.0, 2.0, 0.5]
    assert reports == [("still waiting", None)]


def test_poll_with_no_time_left_checks_once_and_does_not_sleep(tmp_path: Path) -> None:
    ctx, stopping, _ = fake_context(tmp_path, poll_interval=2.0)
    calls = []

    def check() -> tuple[int | None, str]:
        calls.append(1)
        return None, "never"

    with pytest.raises(StepFailed, match="gave up: never"):
        ctx.poll(check, timeout=0, on_timeout=timed_out)
    assert calls == [1]
    assert stopping.waits == []


def test_a_stop_request_ends_the_poll_with_cancelled(tmp_path: Path) -> None:
    ctx, stopping, _ = fake_context(tmp_path, poll_interval=3.0, stop_after=1)
    with pytest.raises(Cancelled):
        ctx.poll(lambda: (None, "waiting"), timeout=60, on_timeout=timed_out)
    assert stopping.waits == [3.0, 3.0]


def test_sleep_waits_on_the_stop_event_for_the_given_seconds(tmp_path: Path) -> None:
    ctx, stopping, _ = fake_context(tmp_path, poll_interval=1.0)
    ctx.sleep(0.25)
    assert stopping.waits == [0.25]


def test_a_step_failure_carries_its_next_step_as_the_hint_and_no_output_by_default() -> None:
    failed = StepFailed("disk full", cause="logs grew", next_step="free space, then retry")
    assert (failed.message, failed.cause, failed.hint) == (
        "disk full",
        "logs grew",
        "free space, then retry",
    )
    assert failed.output == ""


# -- blocker wording -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "message", "cause"),
    [
        (errno.ENOSPC, "cannot write {path}: No space left on device",
         "the disk holding {path} is full"),
        (errno.EDQUOT, "cannot write {path}: Disk quota exceeded",
         "the disk holding {path} is full"),
        (errno.EACCES, "cannot use {path}: Permission denied",
         "the service may not write there: its owner, mode or attributes were changed"),
        (errno.EPERM, "cannot use {path}: Operation not permitted",
         "the service may not write there: its owner, mode or attributes were changed"),
        (errno.EIO, "cannot use {path}: Input/output error",
         "the disk reported an input/output error"),
    ],
)  # fmt: skip
def test_a_disk_failure_names_the_file_and_what_to_do(
    tmp_path: Path, number: int, message: str, cause: str
) -> None:
    path = tmp_path / "values" / "redis.yaml"
    error = OSError(number, os.strerror(number), str(path))
    failed = disk_failure(error, fallback=tmp_path / "state")
    assert failed is not None
    assert str(failed) == message.format(path=path)
    assert failed.cause == cause.format(path=path)
    assert failed.output == ""


def test_a_full_disk_points_df_at_the_directory(tmp_path: Path) -> None:
    file = tmp_path / "state.json"
    failed = disk_failure(
        OSError(errno.ENOSPC, "No space left on device", str(file)), fallback=file
    )
    assert failed is not None
    assert failed.next_step == (
        f"free space on it (df -h {tmp_path} shows what is left) or grow the volume "
        "(lvextend + resize2fs), then retry"
    )
    # A directory is named itself; an error without a file name falls back to the state dir.
    failed = disk_failure(OSError(errno.ENOSPC, "No space left on device"), fallback=tmp_path)
    assert failed is not None
    assert str(failed) == f"cannot write {tmp_path}: No space left on device"
    assert f"df -h {tmp_path} shows" in failed.next_step


def test_a_read_only_file_system_and_an_error_without_text(tmp_path: Path) -> None:
    error = OSError(errno.EROFS, None)
    failed = disk_failure(error, fallback=tmp_path)
    assert failed is not None
    assert str(failed) == f"cannot write {tmp_path}: {error}"
    assert failed.cause == (
        f"the file system holding {tmp_path} is read-only (mounted so, or remounted "
        "read-only by the kernel after disk errors)"
    )


def test_other_os_errors_are_not_disk_failures(tmp_path: Path) -> None:
    assert disk_failure(OSError(errno.ENOENT, "No such file"), fallback=tmp_path) is None
    assert disk_failure(OSError("no errno"), fallback=tmp_path) is None


def test_a_wording_table_picks_the_most_specific_class_and_refuses_others() -> None:
    table = WordingTable(
        {
            LookupError: Wording("lookup {exc}", "c", "n"),
            KeyError: Wording("key {exc}", "c {extra}", "n"),
        }
    )
    failed = table.failed(KeyError("k"), extra="x")
    assert (str(failed), failed.cause, failed.output) == ("key 'k'", "c x", "")
    assert str(table.failed(IndexError("i"))) == "lookup i"
    assert table.failed(IndexError("i"), output="tail").output == "tail"
    with pytest.raises(TypeError, match=r"^no blocker wording for ValueError$"):
        table.failed(ValueError("v"))
    assert Wording("m", "c", "n").failed().output == ""


def shout(text: str) -> str:
    return text.replace("secret", "[redacted]")


def test_to_blocker_keeps_a_step_failure_and_redacts_every_text(tmp_path: Path) -> None:
    failed = StepFailed("m secret", cause="c secret", next_step="n secret", output="o secret")
    blocker = to_blocker(Step.APPLY, failed, shout, state_dir=tmp_path)
    assert blocker == Blocker(step=Step.APPLY, message="m [redacted]", cause="c [redacted]",
                              next_step="n [redacted]", output="o [redacted]")  # fmt: skip


def test_to_blocker_words_a_full_disk(tmp_path: Path) -> None:
    error = OSError(errno.ENOSPC, "No space left on device")
    blocker = to_blocker(Step.VALUES, error, shout, state_dir=tmp_path)
    assert blocker.message == f"cannot write {tmp_path}: No space left on device"
    assert blocker.cause == f"the disk holding {tmp_path} is full"


def test_to_blocker_words_a_tool_failure_with_its_output(tmp_path: Path) -> None:
    error = CommandError("kubectl failed (exit 1)", argv=["kubectl"], output="tail secret")
    blocker = to_blocker(Step.SOURCE, error, shout, state_dir=tmp_path)
    assert (blocker.message, blocker.cause, blocker.next_step, blocker.output) == (
        "source failed: kubectl failed (exit 1)",
        "an unexpected error from a tool or the registry",
        "read the output, then retry; if it persists, collect a support bundle",
        "tail [redacted]",
    )
    plain = to_blocker(Step.SOURCE, ServiceError("registry said no"), shout, state_dir=tmp_path)
    assert (plain.message, plain.output) == ("source failed: registry said no", "")


def test_to_blocker_words_a_bug_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x")
    except FileNotFoundError as exc:
        blocker = to_blocker(Step.K3S, exc, shout, state_dir=tmp_path)
    assert blocker.message == (
        "k3s failed with an internal error: FileNotFoundError(2, 'No such file or directory')"
    )
    assert blocker.cause == "a bug in the host service"
    assert blocker.next_step == "retry; if it persists, collect a support bundle and report it"
    assert blocker.output.startswith("Traceback (most recent call last):")
    assert blocker.output.rstrip().endswith(
        "FileNotFoundError: [Errno 2] No such file or directory: 'x'"
    )
    assert caplog.messages == ["step k3s crashed"]
