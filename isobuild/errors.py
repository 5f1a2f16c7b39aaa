"""The exception tree isobuild raises; only the CLI turns these into exit codes."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes; scripts and CI branch on these."""

    OK = 0
    FAILURE = 1  # the work itself failed: a tool, a download, a boot
    USAGE = 2  # bad command line or build config: fix the invocation
    INPUT = 3  # an input was refused: base ISO, checksum, signature, artifact
    ENVIRONMENT = 4  # the machine is not ready: missing tool, no space, not writable
    INTERRUPTED = 130  # SIGINT (Ctrl-C); SIGTERM exits 143, both leave nothing behind


class IsobuildError(Exception):
    """Base of every error isobuild reports to users.

    ``message`` says what was wrong and where; ``hint`` says what to do.
    """

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(IsobuildError):
    """The build config, lock file or command line is wrong."""

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[str] | str, *, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class SourceIsoError(IsobuildError):
    """The base ISO is missing, unreadable or not what we can remaster."""

    exit_code = ExitCode.INPUT


class VerificationError(IsobuildError):
    """A digest or signature did not match what was pinned or published."""

    exit_code = ExitCode.INPUT


class PayloadError(IsobuildError):
    """An artifact could not be fetched, cached or assembled."""


class EnvironmentProblem(IsobuildError):
    """The machine is not ready: a missing tool, too little space, a read-only path."""

    exit_code = ExitCode.ENVIRONMENT


class ToolError(IsobuildError):
    """An external tool ran and failed."""


class OutputExistsError(EnvironmentProblem):
    """An output file is already there and ``--force`` was not given."""


class BootError(IsobuildError):
    """A QEMU boot did not reach the expected state."""


class DeviceRefused(EnvironmentProblem):
    """`flash` will not write to this target: a system disk, mounted, too small, ..."""


class FlashError(IsobuildError):
    """Writing or verifying a stick failed: an I/O error, or the read-back did not match."""
