"""`make bench`: runs every benchmark module and prints its figures as ratios to a baseline."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

import tests.bench


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--only", action="append", default=[], help="run only these modules")
    args = parser.parse_args()
    names = sorted(m.name for m in pkgutil.iter_modules(tests.bench.__path__))
    failed = 0
    for name in names:
        if name.startswith("_") or (args.only and name not in args.only):
            continue
        module = importlib.import_module(f"tests.bench.{name}")
        print(f"== bench: {name}", flush=True)
        # Each module's run(cache) prints its own table and returns 0 when it could measure.
        failed += module.run(args.cache) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
