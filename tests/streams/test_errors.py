"""One exception tree for :mod:`streams`, found by discovery: a new exception class anywhere
in the package must join it, and be drawn in ``streams/errors.py``'s docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import streams
import streams.errors
from streams.errors import VigilError


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for module_info in pkgutil.walk_packages(streams.__path__, "streams."):
        if module_info.name.rsplit(".", 1)[-1] == "__main__":  # importing it would run it
            continue
        module = importlib.import_module(module_info.name)
        found += [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj)
            and issubclass(obj, BaseException)
            and obj.__module__ == module.__name__
        ]
    return found


EXCEPTIONS = _exception_classes()


def test_discovery_finds_the_dev_tools_errors() -> None:
    names = {cls.__name__ for cls in EXCEPTIONS}
    assert {"LocalBrokerError", "BrokerStartError", "LocalPrometheusError"} <= names


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_exception_is_a_vigil_error_drawn_in_the_tree(cls: type[BaseException]) -> None:
    assert issubclass(cls, VigilError), f"{cls.__module__}.{cls.__name__} is not a VigilError"
    assert cls.__name__.endswith("Error")
    assert f" {cls.__name__} " in (streams.errors.__doc__ or ""), (
        f"{cls.__name__} is missing from the tree drawn in streams/errors.py"
    )


def test_dev_errors_keep_their_builtin_base() -> None:
    # Callers written before the tree caught these as RuntimeError.
    from streams.dev.local_broker import BrokerStartError, LocalBrokerError
    from streams.errors import LocalPrometheusError

    assert issubclass(BrokerStartError, LocalBrokerError)
    assert issubclass(LocalBrokerError, RuntimeError)
    assert issubclass(LocalPrometheusError, RuntimeError)
