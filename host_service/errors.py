"""The host service's one exception root, split by whose fault a problem is.

Modelled on pycdlib (``InvalidInput`` / ``InvalidISO`` / ``InternalError``): what the service
was given is wrong, something outside it failed or answered wrong, the machine is not ready,
or the service itself has a bug. Each class carries the CLI exit code for its kind; every
error has a message that names what and where, and may have a hint saying what to do.
"""

from __future__ import annotations

EXIT_FAILURE, EXIT_USAGE, EXIT_ENVIRONMENT = 1, 2, 4


class ServiceError(Exception):
    """A problem the service reports to its operator (CLI, log or blocker), never a traceback."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(ServiceError):
    """What the service was given is wrong: ``build-info.json``, setup inputs, an argument."""

    exit_code = EXIT_USAGE


class ExternalError(ServiceError):
    """Something outside the service failed or answered wrong: a program (kubectl,
    systemctl), the registry or a release it serves, the host's DNS."""


class HostNotReady(ServiceError):
    """This machine cannot do the work now: a full or read-only disk, a busy state directory."""

    exit_code = EXIT_ENVIRONMENT


class InternalError(ServiceError):
    """A bug in the host service (a state transition that cannot happen)."""


class SettingsError(InvalidInput):
    """``build-info.json`` (the settings file) is unreadable or has a wrong value."""


class AlreadyRunning(HostNotReady):
    """Another host service process holds the state directory."""
