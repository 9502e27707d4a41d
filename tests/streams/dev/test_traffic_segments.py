"""Synthetic traffic with a segment-only shift (the demo's, issue 16)."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime

from streams.dev.traffic import DriftSchedule, SyntheticModel


def test_a_segment_schedule_shifts_its_feature_in_that_segment_only() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    plain = SyntheticModel("m", seed=5, start=start)
    shifted = SyntheticModel(
        "m",
        seed=5,
        start=start,
        drift=[DriftSchedule("x1", start=1000, shift=2.0, segment=("region", "eu"))],
    )
    a = [plain.event()[0] for _ in range(4000)]
    b = [shifted.event()[0] for _ in range(4000)]
    # Same draws: segments, predictions and other features are identical.
    assert [e["segment"] for e in a] == [e["segment"] for e in b]
    assert [e["prediction"] for e in a] == [e["prediction"] for e in b]
    moved = [y["features"]["x1"] - x["features"]["x1"] for x, y in zip(a, b, strict=True)]
    for i, (x, d) in enumerate(zip(a, moved, strict=True)):
        expected = 2.0 if i >= 1000 and x["segment"]["region"] == "eu" else 0.0
        assert abs(d - expected) < 1e-4
    assert statistics.mean(moved[1000:]) > 0.5
