"""River is pinned exactly because the pre-issue-17 numeric detector uses its private module.

``river._river_rust.drift.AdaptiveWindowing`` is River's compiled ADWIN. It is not public
API, so a River release may move or change it. ``detectors/`` no longer uses it (the
numeric detector runs CUSUMs since issue 17), but
``benchmarks/baselines/legacy_numeric_drift.py`` (the old detector, the benchmark's cost
and delay baseline) does, and the benchmark's peer is River's public ADWIN; pyproject.toml
pins one release and these tests check that the installed release is that one and still
has what the baseline uses.
"""

from __future__ import annotations

import pickle
import random
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _pinned_in_pyproject() -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    river = [d for d in deps if re.match(r"river\b", d)]
    assert len(river) == 1, river
    match = re.fullmatch(r"river==([\w.]+)", river[0])
    assert match, f"river must be pinned exactly (private module in use); got {river[0]!r}"
    return match.group(1)


def test_the_pin_is_exact_and_is_what_the_lock_and_the_venv_have() -> None:
    pinned = _pinned_in_pyproject()
    for lock in ("requirements.lock", "requirements-runtime.lock"):
        text = (REPO / lock).read_text(encoding="utf-8")
        assert f"\nriver=={pinned} " in text, f"{lock} does not pin river=={pinned}"
    assert version("river") == pinned


def _adwin(clock: int = 32) -> object:
    from river._river_rust.drift import AdaptiveWindowing

    return AdaptiveWindowing(
        delta=0.002, clock=clock, max_buckets=5, min_window_length=5, grace_period=10
    )


def test_the_private_adwin_has_the_api_numeric_drift_uses() -> None:
    adwin = _adwin()
    rng = random.Random(7)
    found = [i for i in range(4000) if adwin.update(rng.gauss(0.0 if i < 2000 else 1.0, 1.0))]
    # A one-sigma shift at 2000 is found soon after it, and nothing before it.
    assert found and 2000 < found[0] < 2300, found[:5]
    width = adwin.get_width()
    assert 0 < width <= 4000
    assert adwin.get_total() / width == pytest.approx(1.0, abs=0.2)
    assert adwin.get_variance() > 0


def test_the_private_adwin_state_round_trips() -> None:
    """NumericDrift snapshots hold ``__getstate__`` bytes; restored, the window continues."""
    rng = random.Random(11)
    values = [rng.gauss(0.0, 1.0) for _ in range(3000)] + [rng.gauss(2.0, 1.0) for _ in range(1000)]
    whole, first = _adwin(), _adwin()
    for v in values[:2500]:
        whole.update(v)
        first.update(v)
    state = first.__getstate__()
    assert isinstance(state, bytes)
    resumed = _adwin()
    resumed.__setstate__(state)
    assert pickle.loads(pickle.dumps(state)) == state
    rest_whole = [whole.update(v) for v in values[2500:]]
    rest_resumed = [resumed.update(v) for v in values[2500:]]
    assert rest_whole == rest_resumed
    assert any(rest_whole)
    assert resumed.get_total() == whole.get_total()
