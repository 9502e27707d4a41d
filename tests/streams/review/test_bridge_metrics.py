"""The review bridge's own metrics (streams/review/bridge.py)."""

from __future__ import annotations

import pytest

from streams.review.bridge import BridgeMetrics


def test_the_model_label_is_capped_like_a_workers() -> None:
    metrics = BridgeMetrics(max_models=2)
    assert [metrics.model(m) for m in ("a", "b", "c", "a")] == ["a", "b", "_other", "a"]


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_models"):
        BridgeMetrics(max_models=0)
