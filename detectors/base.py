"""The contract every detector, monitor and policy in :mod:`detectors` follows.

A detector is a small class (in the style of River):

* ``__init__`` stores each setting unchanged as a public attribute and checks it,
  raising :class:`~detectors.errors.SettingsError` that names the setting and the rule;
* learned state is private and built in one ``_reset()``;
* ``update`` takes one observation and rejects NaN / wrong types with
  :class:`~detectors.errors.InvalidObservationError` *before* touching state. Its
  arity picks the base: :class:`UnivariateDetector` for ``update(x)``,
  :class:`BivariateDetector` for ``update(x, y)``; a class whose update takes
  other arguments (``ConformalEscalation``: score, correct, was_escalated;
  ``EscalationPolicy``: a prediction and keyword-only context) derives from
  :class:`Detector` and defines its own;
* results are read-only properties;
* ``snapshot()`` returns plain, picklable data (dicts, lists, numbers, strings)
  and ``restore(snapshot)`` rebuilds an object that continues exactly as if it
  had never stopped.

The shared contract suite in ``tests/detectors/test_contract.py`` finds every
concrete class here by walking the package (a class declares the constructor
arguments it is tested with in ``_unit_test_params``) and checks all of this,
plus River's cheap checks: pickle, clone, ``repr``, settings matching the
``__init__`` signature, and input left unmutated.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Generic, Self, TypeGuard, TypeVar

from detectors.errors import InvalidObservationError, SettingsError, SnapshotError

__all__ = [
    "BivariateDetector",
    "Detector",
    "UnivariateDetector",
    "as_bool",
    "as_real",
    "check_bool",
    "check_count",
    "check_finite",
    "check_in_range",
    "check_inclusion_probability",
    "check_positive",
    "check_probability",
    "check_weight",
]


def _is_real(value: object) -> TypeGuard[numbers.Real]:
    """A real number that is not a bool: ``int``, ``float``, and what registers as
    :class:`numbers.Real` (numpy's floating and integer scalars, ``Fraction``).

    Numpy's bool is not a ``numbers.Real``, and a numpy array (even 0-d) is not one
    either, so both stay refused. ``type(value) is float`` first: the common case costs
    one comparison.
    """
    t = type(value)
    if t is float or t is int:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_finite(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number.

    Numpy scalars (``np.float32``, ``np.int64``, ...) are real numbers too; bools
    (Python's and numpy's) and strings are not.

    >>> check_finite("x", 3)
    3.0
    >>> check_finite("x", float("nan"))
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidObservationError: 'x' must be a finite number; got nan
    >>> check_finite("x", "3")
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidObservationError: 'x' must be a finite number; got '3'
    """
    t = type(value)
    if t is float or t is int:  # the common case, inlined (this runs once per value)
        f = float(value)  # type: ignore[arg-type]  # checked just above
    elif _is_real(value):
        f = float(value)
    else:
        raise InvalidObservationError(f"{name!r} must be a finite number; got {value!r}")
    if not math.isfinite(f):
        raise InvalidObservationError(f"{name!r} must be a finite number; got {value!r}")
    return f


def as_real(value: object) -> float | None:
    """``value`` as a float if it is a real number (a numpy scalar too; never a bool),
    else ``None``; NaN and infinities pass (the caller decides what they mean). For
    paths that sort values rather than refuse them (a feature's out-of-range count).

    >>> as_real(2), as_real(True), as_real("2"), as_real(None)
    (2.0, None, None, None)
    """
    if type(value) is float:
        return value
    if not _is_real(value):
        return None
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        return None


def as_bool(value: object) -> bool | None:
    """``value`` if it is a bool (numpy's too, as a Python bool), else ``None``.

    >>> as_bool(False), as_bool(0), as_bool("true")
    (False, None, None)
    """
    if value is True or value is False:
        return value
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.bool_):
        return bool(value)
    return None


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` as a ``bool`` if it is one (Python's or numpy's), else raise.

    Numpy's bool is recognised without importing numpy: a value can only be one if
    numpy is already imported. Ints (``1``, ``np.int64(0)``) are refused: a 0/1 flag
    passed where a bool belongs is more often a label id than a truth value.

    >>> check_bool("correct", True)
    True
    >>> check_bool("correct", 1)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidObservationError: 'correct' must be a bool; got 1
    """
    b = as_bool(value)
    if b is None:
        raise InvalidObservationError(f"{name!r} must be a bool; got {value!r}")
    return b


def check_count(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0 (numpy's integers too),
    else raise. Bools are refused.

    >>> check_count("missing", 3)
    3
    >>> check_count("missing", -1)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidObservationError: 'missing' must be an integer >= 0; got -1
    """
    if type(value) is int:
        n = value
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        n = operator.index(value)
    else:
        raise InvalidObservationError(f"{name!r} must be an integer >= 0; got {value!r}")
    if n < 0:
        raise InvalidObservationError(f"{name!r} must be an integer >= 0; got {value!r}")
    return n


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a float in [0, 1], or raise ``InvalidObservationError``.

    >>> check_probability("confidence", 0.25)
    0.25
    """
    f = check_finite(name, value)
    if not 0.0 <= f <= 1.0:
        raise InvalidObservationError(f"{name!r} must be in [0, 1]; got {value!r}")
    return f


def check_weight(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise.

    A label's weight is ``1 / inclusion probability`` (Horvitz-Thompson): an
    item that had a 2 % chance of being labelled stands for 50 items.

    >>> check_weight("weight", 50)
    50.0
    >>> check_weight("weight", 0.0)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidObservationError: 'weight' must be a finite number > 0; got 0.0
    """
    f = float(value) if _is_real(value) else math.nan
    if not (math.isfinite(f) and f > 0):
        raise InvalidObservationError(f"{name!r} must be a finite number > 0; got {value!r}")
    return f


def check_inclusion_probability(name: str, value: object) -> float:
    """Return ``value`` as a float in (0, 1], or raise ``InvalidObservationError``.

    The probability with which an item was sent for labelling; its inverse
    weighs the item's label.

    >>> check_inclusion_probability("inclusion_probability", 0.02)
    0.02
    >>> check_inclusion_probability("inclusion_probability", 0)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidObservationError: 'inclusion_probability' must be in (0, 1]; got 0
    """
    f = check_finite(name, value)
    if not 0.0 < f <= 1.0:
        raise InvalidObservationError(f"{name!r} must be in (0, 1]; got {value!r}")
    return f


def check_positive(name: str, value: object, *, integer: bool = False) -> Any:
    """Validate a *setting* that must be > 0; raises :class:`SettingsError`.

    >>> check_positive("window", 10, integer=True)
    10
    >>> check_positive("window", 0, integer=True)
    Traceback (most recent call last):
    ...
    detectors.errors.SettingsError: 'window' must be a positive integer; got 0
    """
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SettingsError(f"{name!r} must be a positive integer; got {value!r}")
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise SettingsError(f"{name!r} must be a positive finite number; got {value!r}")
    return value


def check_in_range(name: str, value: object, lo: float, hi: float) -> float:
    """Validate a *setting* in the closed interval [lo, hi]; raises :class:`SettingsError`.

    >>> check_in_range("target_error", 0.05, 0.0, 1.0)
    0.05
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise SettingsError(f"{name!r} must be a number in [{lo}, {hi}]; got {value!r}")
    return float(value)


class Detector(ABC):
    """Base class: settings in ``__init__``, state in ``_reset``, plain snapshots.

    Subclasses list the names of their constructor settings in ``_settings`` and
    implement ``_reset``, ``_state``, ``_load_state`` and an ``update`` (see
    :class:`UnivariateDetector` and :class:`BivariateDetector`). The base
    class builds ``snapshot``/``restore`` from those, so a snapshot is
    ``{"class": ..., "version": ..., "settings": {...}, "state": {...}}``.
    """

    _settings: ClassVar[tuple[str, ...]] = ()
    _snapshot_version: ClassVar[int] = 1

    @abstractmethod
    def _reset(self) -> None:
        """Build all learned state from scratch."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Learned state as plain data (lists, dicts, numbers, strings)."""

    @abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_state`; called on a freshly constructed object."""

    def settings(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this object (without its state)."""
        return {name: getattr(self, name) for name in self._settings}

    def snapshot(self) -> dict[str, Any]:
        """Plain, picklable state from which :meth:`restore` continues exactly."""
        return {
            "class": type(self).__qualname__,
            "version": self._snapshot_version,
            "settings": self.settings(),
            "state": self._state(),
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Self:
        """Rebuild an object from :meth:`snapshot`; it continues as if never stopped."""
        if not isinstance(snapshot, dict):
            raise SnapshotError(f"snapshot must be a dict; got {type(snapshot).__name__}")
        if snapshot.get("class") != cls.__qualname__:
            raise SnapshotError(
                f"snapshot is of class {snapshot.get('class')!r}, not {cls.__qualname__!r}"
            )
        if snapshot.get("version") != cls._snapshot_version:
            raise SnapshotError(
                f"snapshot version {snapshot.get('version')!r} is not "
                f"{cls._snapshot_version} for {cls.__qualname__}"
            )
        obj = cls(**snapshot["settings"])
        obj._load_state(snapshot["state"])
        return obj

    def clone(self) -> Self:
        """A fresh object with the same settings and no learned state."""
        return type(self)(**self.settings())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """Constructor arguments the contract suite runs this class with (as River's
        ``_unit_test_params``). Every concrete class defines its own, so that a new
        detector cannot enter the package untested."""
        raise NotImplementedError(f"{cls.__qualname__} declares no _unit_test_params")


In = TypeVar("In")
In2 = TypeVar("In2")
Out = TypeVar("Out")


class UnivariateDetector(Detector, Generic[In, Out]):
    """A detector fed one value per update: ``update(x)``."""

    @abstractmethod
    def update(self, x: In, /) -> Out:
        """Take one observation; reject it (state untouched) if invalid."""


class BivariateDetector(Detector, Generic[In, In2, Out]):
    """A detector fed a pair per update: ``update(x, y)`` (a confidence and whether it
    was right, a priority and the time, an event's features and its prediction)."""

    @abstractmethod
    def update(self, x: In, y: In2, /) -> Out:
        """Take one observation pair; reject it (state untouched) if invalid."""
