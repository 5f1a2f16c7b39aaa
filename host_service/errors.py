"""The host service's own error type: a message that says what and where, and a hint."""

from __future__ import annotations


class ServiceError(Exception):
    """A problem the service reports to its operator (CLI or log), never a traceback."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SettingsError(ServiceError):
    """``build-info.json`` (the settings file) is unreadable or has a wrong value."""


class AlreadyRunning(ServiceError):
    """Another host service process holds the state directory."""
