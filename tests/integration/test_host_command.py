"""host_service.command.stream_lines on real programs: output as it comes, errors, stops."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from host_service.command import Children, CommandFailed, stream_lines, tracking


def _collect(lines: list[str], argv: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: lines.extend(stream_lines(argv)), daemon=True)
    thread.start()
    return thread


def test_much_stderr_does_not_block_the_stdout_that_follows_it() -> None:
    # 256 KiB of stderr before the first stdout line: more than a pipe holds.
    script = "head -c 262144 /dev/zero | tr '\\0' x >&2; echo first; echo second"
    lines: list[str] = []
    reader = _collect(lines, ["sh", "-c", script])
    reader.join(60)
    assert not reader.is_alive(), "stream_lines blocked behind the program's stderr"
    assert lines == ["first", "second"]


def test_a_failing_program_raises_with_the_last_line_of_its_stderr() -> None:
    script = "echo partial; echo 'error: pod not found' >&2; exit 3"
    lines: list[str] = []
    with pytest.raises(CommandFailed, match="exited with 3: error: pod not found") as caught:
        lines.extend(stream_lines(["sh", "-c", script]))
    assert lines == ["partial"]
    assert caught.value.returncode == 3


def test_closing_the_stream_ends_the_program(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    stream = stream_lines(["sh", "-c", f"echo $$ > {pid_file}; echo ready; exec sleep 600"])
    assert next(stream) == "ready"
    stream.close()  # the reader went away
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_stop_of_the_runner_ends_a_follow_it_started() -> None:
    children = Children()
    with tracking(children):
        stream = stream_lines(["sh", "-c", "echo ready; exec sleep 600"])
        assert next(stream) == "ready"
    assert children.stop(5.0) == 1  # registered while it runs, and ended by the stop
    with pytest.raises(CommandFailed, match="exited with -15"):
        list(stream)
