"""The k3s binary itself, behind a typed interface (kubectl goes through ``kube``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from host_service import command

_VERSION = re.compile(r"k3s version (v\S+)")


class K3sBinary(Protocol):
    def version(self, binary: Path) -> str:
        """``v1.36.3+k3s1``; raises ``CommandError`` when the file is not a working k3s."""
        ...


class K3sCli:
    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout

    def version(self, binary: Path) -> str:
        result = command.run([str(binary), "--version"], timeout=self.timeout)
        found = _VERSION.search(result.stdout)
        if found is None:
            raise command.CommandError(
                f"{binary} --version did not report a k3s version",
                argv=[str(binary), "--version"],
                output=command.tail(result.stdout + result.stderr),
            )
        return found.group(1)
