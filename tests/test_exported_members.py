"""Each package's ``__all__`` is its real public API (HTTPX's ``test_exported_members.py``).

Packages are discovered with :mod:`pkgutil`, so a new package under ``streams/`` or
``detectors/`` is checked without being listed here. For every package: each name in
``__all__`` resolves (through a PEP 562 ``__getattr__`` too, as ``streams.dev`` does) and
``from package import *`` works; no name is listed twice; the list is in ruff's isort-style
order (RUF022); and every public name the ``__init__`` binds is listed, so nothing is
exported by accident or left out of ``__all__`` by mistake. Modules that define ``__all__``
get the first two checks.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import detectors
import streams

ROOTS = (streams, detectors)


def _walk() -> list[tuple[str, bool]]:
    found = [(root.__name__, True) for root in ROOTS]
    for root in ROOTS:
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}."):
            found.append((info.name, info.ispkg))
    return sorted(found)


def _defines_all(name: str) -> bool:
    # Read, not imported: collecting this file should not import every module (Faust...).
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    if not spec.origin.endswith(".py"):  # compiled (detectors._native): no source here
        return False
    source = Path(spec.origin).read_text(encoding="utf-8")
    return re.search(r"^__all__\b", source, flags=re.MULTILINE) is not None


_ALL = _walk()
PACKAGES = [name for name, ispkg in _ALL if ispkg]
MODULES_WITH_ALL = [name for name, ispkg in _ALL if not ispkg and _defines_all(name)]


def _isort_key(name: str) -> tuple[int, list[int | str]]:
    """RUF022's order: CONSTANTS, then Classes, then everything else; natural sort within."""
    if len(name) > 1 and name.isupper():
        category = 0
    elif name[:1].isupper():
        category = 1
    else:
        category = 2
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return category, natural


def _exported(module: ModuleType) -> list[str]:
    # A package without __all__ exports nothing: then it must bind no public name either.
    return list(getattr(module, "__all__", []))


def _bound_public_names(package: ModuleType) -> set[str]:
    """Public names bound by the package's ``__init__``.

    Left out: modules (submodules are bound as attributes once imported, and a module the
    ``__init__`` imports for itself is not API) and ``annotations``, the ``__future__``
    feature that ``from __future__ import annotations`` binds.
    """
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, ModuleType)
    }


def test_discovery_finds_the_packages() -> None:
    # Guards the discovery itself: an empty list would make every test below vacuous.
    assert {"streams", "streams.events", "streams.ingest", "streams.dev", "detectors"} <= set(
        PACKAGES
    )
    assert "streams.client" in MODULES_WITH_ALL


@pytest.mark.parametrize("name", PACKAGES + MODULES_WITH_ALL)
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    missing = [attr for attr in _exported(module) if not hasattr(module, attr)]
    assert not missing, f"{name}.__all__ names {missing}, which {name} does not define"
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)  # noqa: S102 - a fixed import of our own module
    assert set(_exported(module)) <= set(namespace)


@pytest.mark.parametrize("name", PACKAGES + MODULES_WITH_ALL)
def test_no_name_exported_twice(name: str) -> None:
    exported = _exported(importlib.import_module(name))
    twice = sorted({attr for attr in exported if exported.count(attr) > 1})
    assert not twice, f"{name}.__all__ lists {twice} more than once"


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_are_in_isort_order(name: str) -> None:
    exported = _exported(importlib.import_module(name))
    assert exported == sorted(exported, key=_isort_key), (
        f"{name}.__all__ is not in isort-style order (constants, classes, functions)"
    )


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_is_exported(name: str) -> None:
    package = importlib.import_module(name)
    unlisted = sorted(_bound_public_names(package) - set(_exported(package)))
    assert not unlisted, (
        f"{name}.__init__ binds {unlisted} without listing them in __all__: "
        "export them, or bind them under a private name"
    )
