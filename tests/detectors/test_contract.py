"""The contract every detector, monitor and policy passes (STYLE §4, §10).

Classes are found, not listed: every module of ``detectors`` is imported, and every
concrete subclass of :class:`~detectors.base.Detector` (at any depth) and every
other class there with ``snapshot`` and ``restore`` (``ModelMonitor``) is checked,
once per set of constructor arguments its ``_unit_test_params`` yields, fed the
stream ``contract_inputs.INPUTS`` gives for it. As River's ``checks/``:

* snapshot -> pickle -> restore -> continue gives what never stopping gives;
* the object itself survives a pickle round trip and continues the same;
* bad input (NaN, infinities, wrong types) raises a ``ValueError`` with a message
  and leaves the state untouched;
* state stays bounded over a long stream;
* ``clone()`` is a fresh object with the same settings;
* ``repr`` shows every constructor argument;
* each ``__init__`` argument is kept unchanged as a public attribute, and the
  settings a detector snapshots are exactly its ``__init__`` arguments;
* ``update`` does not mutate its input.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
import pkgutil
import random
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import detectors
from detectors.base import Detector
from tests.detectors.contract_inputs import INPUTS, Inputs

RESUME_LENGTHS = (1700, 3400)  # the split of the first falls in a 1000-value learning phase
SEED = 1234


def _modules() -> Iterator[str]:
    for info in pkgutil.walk_packages(detectors.__path__, "detectors."):
        yield info.name


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def discover() -> list[type]:
    """Every concrete class of ``detectors`` under contract, by name."""
    for name in _modules():
        importlib.import_module(name)
    found: dict[str, type] = {}
    for cls in _subclasses(Detector):
        if cls.__module__.startswith("detectors.") and not inspect.isabstract(cls):
            found[cls.__qualname__] = cls
    for name in _modules():
        for _, cls in inspect.getmembers(sys.modules[name], inspect.isclass):
            if (
                cls.__module__ == name
                and callable(getattr(cls, "snapshot", None))
                and inspect.ismethod(getattr(cls, "restore", None))
                and not inspect.isabstract(cls)
            ):
                found[cls.__qualname__] = cls
    return sorted(found.values(), key=lambda c: c.__qualname__)


CLASSES = discover()


def _declares_params(cls: type) -> bool:
    return "_unit_test_params" in vars(cls)


def params_of(cls: Any, k: int) -> dict[str, Any]:
    # Called anew for each object: arguments may be stateful objects (ModelMonitor's
    # components), which two objects must not share.
    return list(cls._unit_test_params())[k]


CASES = [
    pytest.param(cls, k, id=f"{cls.__qualname__}-{k}")
    for cls in CLASSES
    if _declares_params(cls) and cls.__qualname__ in INPUTS
    for k in range(len(list(cls._unit_test_params())))
]


def build(cls: Any, k: int) -> Any:
    return cls(**params_of(cls, k))


def stream(cls: type, n: int, seed: int = SEED) -> list[Any]:
    rng = random.Random(seed)
    make = INPUTS[cls.__qualname__].make
    return [make(i, rng) for i in range(n)]


def inputs(cls: type) -> Inputs:
    return INPUTS[cls.__qualname__]


# -- discovery -----------------------------------------------------------------


def test_discovery_finds_the_known_classes() -> None:
    """A guard on the walk itself: these must be among what it finds."""
    names = {cls.__qualname__ for cls in CLASSES}
    known = {
        "NumericDrift",
        "CategoricalDrift",
        "DataQualityDrift",
        "DriftMonitor",
        "CalibrationMonitor",
        "PerformanceEstimator",
        "ConformalEscalation",
        "EscalationBudget",
        "ThresholdEscalation",
        "EscalationPolicy",
        "ModelMonitor",
        "AutoAcceptMonitor",
        "Adjudicator",
        "ReviewerReliability",
        "AgreementMonitor",
        "ClasswiseCalibrationMonitor",
        "RegressionQualityMonitor",
    }
    assert known <= names, known - names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_every_class_declares_test_params_and_inputs(cls: Any) -> None:
    assert _declares_params(cls), (
        f"{cls.__qualname__} declares no _unit_test_params: add a classmethod yielding "
        "constructor arguments, so the contract suite can run it"
    )
    assert list(cls._unit_test_params()), f"{cls.__qualname__}._unit_test_params yields nothing"
    assert cls.__qualname__ in INPUTS, (
        f"no contract input for {cls.__qualname__}: add it to tests/detectors/contract_inputs.py"
    )


def test_a_detector_without_params_is_found_and_flagged() -> None:
    """The machinery itself: a new class in a detectors module is discovered, and the
    check above would fail it for lacking ``_unit_test_params``."""
    from detectors.base import UnivariateDetector

    class Unlisted(UnivariateDetector[float, None]):
        def _reset(self) -> None: ...
        def _state(self) -> dict[str, Any]:
            return {}

        def _load_state(self, state: dict[str, Any]) -> None: ...
        def update(self, x: float) -> None: ...

    Unlisted.__module__ = "detectors.numeric_drift"
    assert Unlisted in discover()
    assert not _declares_params(Unlisted)
    with pytest.raises(NotImplementedError, match="Unlisted declares no _unit_test_params"):
        list(Unlisted._unit_test_params())


# -- state -----------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "k"), CASES)
@pytest.mark.parametrize("n", RESUME_LENGTHS)
def test_snapshot_restore_continue_equals_never_stopping(cls: Any, k: int, n: int) -> None:
    feed = inputs(cls).feed
    items = stream(cls, n)
    whole = build(cls, k)
    out_whole = [feed(whole, x) for x in items]
    half = n // 2
    first = build(cls, k)
    out_first = [feed(first, x) for x in items[:half]]
    snap = pickle.loads(pickle.dumps(first.snapshot()))
    resumed = cls.restore(snap)
    out_rest = [feed(resumed, x) for x in items[half:]]
    assert out_first + out_rest == out_whole
    assert resumed.snapshot() == whole.snapshot()


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_stream_is_not_trivial(cls: Any, k: int) -> None:
    """Something happens in the contract stream: outputs are not all alike."""
    det = build(cls, k)
    feed = inputs(cls).feed
    outs = [feed(det, x) for x in stream(cls, max(RESUME_LENGTHS))]
    assert len({repr(o) for o in outs}) >= 2


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_pickle_round_trip(cls: Any, k: int) -> None:
    feed = inputs(cls).feed
    items = stream(cls, 2000)
    det = build(cls, k)
    for x in items[:1000]:
        feed(det, x)
    copied = pickle.loads(pickle.dumps(det))
    assert type(copied) is cls
    assert copied.snapshot() == det.snapshot()
    assert [feed(copied, x) for x in items[1000:]] == [feed(det, x) for x in items[1000:]]


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_rejects_bad_input_and_keeps_state(cls: Any, k: int) -> None:
    spec = inputs(cls)
    assert spec.bad, f"no bad inputs listed for {cls.__qualname__}"
    det = build(cls, k)
    for x in stream(cls, 500, seed=5):
        spec.feed(det, x)
    before = det.snapshot()
    for bad in spec.bad:
        with pytest.raises(ValueError) as info:
            spec.feed(det, bad)
        assert str(info.value), f"empty error message for {bad!r}"
        assert det.snapshot() == before, f"state changed after rejecting {bad!r}"


def snapshot_size(det: Any) -> int:
    return len(pickle.dumps(det.snapshot()))


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_bounded_memory(cls: Any, k: int) -> None:
    """Snapshot size after ``n`` items is at most 1.5x (+1 KiB) its size after
    ``n / 10``: state does not grow with the stream (ADWIN's histograms grow
    logarithmically, inside that slack)."""
    spec = inputs(cls)
    make = spec.memory_make or spec.make
    n = spec.memory_n if k == 0 else min(spec.memory_n, 20_000)
    rng = random.Random(3)
    det = build(cls, k)
    early = n // 10
    for i in range(early):
        spec.feed(det, make(i, rng))
    size_early = snapshot_size(det)
    for i in range(early, n):
        spec.feed(det, make(i, rng))
    size_late = snapshot_size(det)
    assert size_late <= 1.5 * size_early + 1024, (size_early, size_late)
    assert sys.getsizeof(det) < 10_000


# -- River's cheap checks --------------------------------------------------------


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_clone_is_fresh_with_the_same_settings(cls: Any, k: int) -> None:
    feed = inputs(cls).feed
    items = stream(cls, 1200)
    det = build(cls, k)
    for x in items[:600]:
        feed(det, x)
    used = det.snapshot()
    clone = det.clone()
    fresh = build(cls, k)
    assert type(clone) is cls and clone is not det
    assert clone.snapshot() == fresh.snapshot()
    assert [feed(clone, x) for x in items] == [feed(fresh, x) for x in items]
    assert det.snapshot() == used, "feeding the clone changed the original"


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_repr_shows_every_argument(cls: Any, k: int) -> None:
    text = repr(build(cls, k))
    assert text.startswith(f"{cls.__name__}(")
    for name in inspect.signature(cls.__init__).parameters:
        if name != "self":
            assert f"{name}=" in text, (name, text)


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_init_arguments_are_kept_unchanged_as_public_attributes(cls: Any, k: int) -> None:
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    params = params_of(cls, k)
    obj = cls(**params)
    for name in names:
        assert not name.startswith("_")
        assert hasattr(obj, name), f"{cls.__qualname__}.{name} is not stored"
    for name, value in params.items():
        assert getattr(obj, name) is value, f"{cls.__qualname__}.{name} was changed"
    if isinstance(obj, Detector):
        # The settings a snapshot carries are exactly the constructor's arguments.
        assert list(obj.settings()) == names


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_update_does_not_mutate_its_input(cls: Any, k: int) -> None:
    feed = inputs(cls).feed
    det = build(cls, k)
    for x in stream(cls, 1500):
        before = copy.deepcopy(x)
        feed(det, x)
        assert x == before, f"{cls.__qualname__} changed its input {before!r} to {x!r}"


# -- checks one class needs beyond the shared ones ------------------------------


def test_numeric_update_many_rejects_the_block_whole() -> None:
    from detectors.numeric_drift import NumericDrift

    det = NumericDrift(reference_size=100)
    for x in stream(NumericDrift, 500, seed=2):
        det.update(x)
    before = det.snapshot()
    with pytest.raises(ValueError, match="finite"):
        det.update_many([1.0, float("nan")])
    assert det.snapshot() == before


def test_drift_monitor_resumes_with_a_reference_profile() -> None:
    from detectors.drift_monitor import DriftMonitor
    from detectors.reference import ReferenceBuilder

    profile = ReferenceBuilder.from_events(stream(DriftMonitor, 3000, seed=11), "m").to_dict()
    items = stream(DriftMonitor, 3000, seed=12)
    whole = DriftMonitor(reference=profile)
    out_whole = [whole.update(*x) for x in items]
    first = DriftMonitor(reference=profile)
    out = [first.update(*x) for x in items[:1500]]
    resumed = DriftMonitor.restore(pickle.loads(pickle.dumps(first.snapshot())))
    out += [resumed.update(*x) for x in items[1500:]]
    assert out == out_whole
    assert any(out_whole), "the profile stream raised no alert"
