"""The CLI's start-up, as ratios to the interpreter's own start measured in the same run.

Each command runs with ``--help`` (start, import what the command needs, print, exit), as
the console script a user runs; the baseline is ``python -c pass`` and, for what the
packages add, ``python -c "import click"``. Best of 5, the commands taking turns round
after round so a change in the machine's load falls on all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 5


def isobuild_argv() -> list[str]:
    """The console script a user runs, else the module."""
    script = Path(sys.executable).with_name("isobuild")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "isobuild.cli"]


def _seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(cache: Path) -> int:
    del cache  # nothing to keep between runs
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import click'": [sys.executable, "-c", "import click"],
        **{
            f"isobuild {' '.join(args)}": [*isobuild_argv(), *args]
            for args in (
                ["--help"],
                ["build", "--help"],
                ["flash", "--help"],
                ["verify", "--help"],
                ["release", "--help"],
            )
        },
    }
    best = dict.fromkeys(cases, float("inf"))
    load_before = os.getloadavg()
    for _ in range(ROUNDS):
        for label, argv in cases.items():
            best[label] = min(best[label], _seconds(argv))
    load_after = os.getloadavg()
    baseline = best["python -c pass"]
    print(f"best of {ROUNDS}; load {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"{'command':30} {'seconds':>8} {'/ python -c pass':>17}")
    for label, value in best.items():
        print(f"{label:30} {value:8.3f} {value / baseline:16.2f}x")
    return 0
