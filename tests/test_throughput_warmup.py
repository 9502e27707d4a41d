"""``benchmarks/throughput.py``'s memory run: where its warm-up ends.

The ratio ``rss_mb_end / rss_mb_start`` is issue 18's bounded-memory figure; it means
"growth with the stream's length" only if the start comes after every model's bounded
state (pending predictions, remembered escalations) has filled to its cap.
"""

from __future__ import annotations

from benchmarks.throughput import N_MODELS, caps_full, warm_start


def _scrape(processed: list[float], sent: list[float], gold: float = 0.0) -> dict:
    return {
        "vigil_events_total": [
            ({"model": f"model-{i}", "outcome": "processed"}, n) for i, n in enumerate(processed)
        ]
        + [({"model": f"model-{i}", "outcome": "dead_letter"}, 1e9) for i in range(N_MODELS)],
        "vigil_escalations_total": [
            ({"model": f"model-{i}", "reason": "conformal"}, n) for i, n in enumerate(sent)
        ]
        + [({"model": f"model-{i}", "reason": "gold"}, gold) for i in range(N_MODELS)],
    }


def test_full_only_when_every_model_reached_both_caps() -> None:
    full = [100.0] * N_MODELS
    assert caps_full(_scrape(full, [10.0] * N_MODELS), 100, 10)
    # One model behind on either count: not full.
    assert not caps_full(_scrape([*full[:-1], 99.0], [10.0] * N_MODELS), 100, 10)
    assert not caps_full(_scrape(full, [10.0] * (N_MODELS - 1) + [9.0]), 100, 10)
    # Dead letters are not processed events; gold questions are not remembered.
    assert not caps_full(_scrape([50.0] * N_MODELS, [10.0] * N_MODELS), 100, 10)
    assert not caps_full(_scrape(full, [5.0] * N_MODELS, gold=5.0), 100, 10)
    # A model with no series yet (its partition not read): not full.
    assert not caps_full(_scrape(full[:-1], [10.0] * (N_MODELS - 1)), 100, 10)


def test_warm_up_ends_at_the_first_full_reading_after_the_first_tenth() -> None:
    readings = [(100.0 + i, i * 1000.0, i >= 37) for i in range(100)]
    assert warm_start(readings) == (37, "caps_full")
    # Full before 10 %: the first tenth still counts as warm-up.
    early = [(100.0, i * 1000.0, i >= 2) for i in range(100)]
    assert warm_start(early) == (10, "caps_full")
    # Never full (a run too short to fill the desks): the reading at 10 %, said so.
    never = [(100.0, i * 1000.0, False) for i in range(100)]
    assert warm_start(never) == (10, "10pct")
