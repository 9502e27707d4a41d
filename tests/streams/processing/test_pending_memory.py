"""A pending prediction's kept scores and segment weigh what they hold, not orjson's
write buffer (4 KiB each before: ~400 MB for ten models' 10k pending predictions)."""

from __future__ import annotations

import tracemalloc

import orjson
from prometheus_client import CollectorRegistry

from streams.config import settings_from_dict
from streams.events.dead_letters import MessageSource
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor


def event(n: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "model_id": "m",
            "ts": "2026-01-01T00:00:00Z",
            "features": {"x": 0.5},
            "prediction": {"label": "cat", "scores": {"cat": 0.6, "dog": 0.4}},
            "segment": {"region": "eu"},
        }
    )


def test_pending_predictions_keep_their_scores_and_segment_at_their_own_size() -> None:
    settings = settings_from_dict({"defaults": {"segments": {"keys": ["region"]}}})
    proc = Processor(settings, VigilMetrics(CollectorRegistry()))
    out = Outgoing()
    for n in range(200):  # the model's state set up first
        proc.inference(event(n), MessageSource("in", 0, n, b"m"), out)
    out.clear()
    n_more = 2_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(200, 200 + n_more):
            proc.inference(event(n), MessageSource("in", 0, n, b"m"), out)
            out.clear()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    state = proc.fleet.get("m")
    assert state.join.pending == 200 + n_more
    compact = dict(state.join.pending_items())[("m", "e300")][0]
    assert orjson.loads(compact[6]) == {"cat": 0.6, "dog": 0.4}
    assert orjson.loads(compact[7]) == {"region": "eu"}
    # Each pending prediction: its key, item and compact tuples, the id and the two JSON
    # values, and its share of the dicts: well under 1 KiB (8 KiB with orjson's buffers).
    assert grown / n_more < 1024, grown / n_more
