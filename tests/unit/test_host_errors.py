"""One exception root for the host service, split by whose fault a problem is."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import host_service
from host_service import errors
from host_service.command import CommandFailed
from host_service.errors import (
    ExternalError,
    HostNotReady,
    InternalError,
    InvalidInput,
    ServiceError,
)
from host_service.intent import InputErrors
from host_service.oci import RegistryError
from host_service.release import ReleaseError
from host_service.service import Conflict
from host_service.state import TransitionError
from host_service.store import StateWriteFailed

# Control flow, not errors: a stop unwinding a step, a superseded worker, and the HTTP
# layer's own answers (an HTTP status with a body, for a route or for an unreadable request).
NOT_ERRORS = {
    "host_service.steps.context.Cancelled",
    "host_service.worker.Superseded",
    "host_service.wsgi.HttpError",
    "host_service.request_reader.ProtocolError",
}


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(host_service.__path__, "host_service."):
        if info.name == "host_service.__main__":
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                found.append(cls)
    return found


def test_every_exception_of_the_service_is_under_the_one_root() -> None:
    classes = _exception_classes()
    assert len(classes) > 20
    names = {f"{c.__module__}.{c.__name__}": c for c in classes}
    assert set(names) >= NOT_ERRORS  # the exceptions listed still exist
    strays = [name for name, c in names.items() if not issubclass(c, ServiceError)]
    assert sorted(set(strays) - NOT_ERRORS) == []


def test_each_kind_has_its_exit_code() -> None:
    assert (ServiceError.exit_code, ExternalError.exit_code, InternalError.exit_code) == (1, 1, 1)
    assert InvalidInput.exit_code == errors.EXIT_USAGE == 2
    assert HostNotReady.exit_code == errors.EXIT_ENVIRONMENT == 4


def test_the_split_follows_whose_fault_it_is() -> None:
    assert issubclass(InputErrors, InvalidInput)
    assert issubclass(Conflict, InvalidInput)
    assert issubclass(errors.SettingsError, InvalidInput)
    assert issubclass(RegistryError, ExternalError)
    assert issubclass(ReleaseError, ExternalError)
    assert issubclass(CommandFailed, ExternalError)
    assert issubclass(StateWriteFailed, HostNotReady)
    assert issubclass(errors.AlreadyRunning, HostNotReady)
    assert issubclass(TransitionError, InternalError)


def test_message_and_hint() -> None:
    error = StateWriteFailed("cannot write /s/x: No space left on device", hint="free space")
    assert str(error) == "cannot write /s/x: No space left on device"
    assert (error.message, error.hint) == (str(error), "free space")
