"""Logging setup for the CLI: terse on stderr, every external command with --debug."""

from __future__ import annotations

import logging
import sys


def setup_logging(*, debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(levelname)s %(name)s: %(message)s" if debug else "%(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter stays out unless debugging.
    for noisy in ("urllib3", "oras", "pycdlib", "paramiko"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
