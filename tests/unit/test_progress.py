"""The progress line: a bar, and for byte counts the amount, the rate and the time left."""

from __future__ import annotations

import io
import re

from isobuild.progress import Progress

GIB = 1 << 30


def test_a_byte_count_shows_amount_rate_and_eta() -> None:
    stream = io.StringIO()
    bar = Progress("writing /dev/sdb", 2.0 * GIB, enabled=True, stream=stream, counts_bytes=True)
    bar.update(GIB)
    line = bar.render()
    assert line.startswith("writing /dev/sdb [###############---------------]  50.0%")
    assert re.search(r"  1\.0 GiB of 2\.0 GiB  [0-9.]+ [KMG]?i?B/s  ETA \d+:\d\d$", line), line


def test_done_shows_no_eta_and_a_percentage_bar_shows_no_bytes() -> None:
    stream = io.StringIO()
    bar = Progress("verifying", 100.0, enabled=True, stream=stream, counts_bytes=True)
    bar.update(100.0)
    assert "ETA" not in bar.render()
    plain = Progress("writing x.iso", 100.0, enabled=True, stream=io.StringIO())
    plain.update(25.0)
    assert plain.render() == "writing x.iso [#######-----------------------]  25.0%"


def test_disabled_progress_writes_nothing() -> None:
    stream = io.StringIO()
    with Progress("x", 10.0, enabled=False, stream=stream, counts_bytes=True) as bar:
        bar.update(5.0)
    assert stream.getvalue() == ""
