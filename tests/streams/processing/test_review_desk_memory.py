"""The review desk's remembered escalations weigh what they hold, not orjson's buffers."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import orjson

from streams.config import settings_from_dict
from streams.processing.review_desk import ReviewDesk


def test_remembered_escalations_cost_about_their_size() -> None:
    desk = ReviewDesk.for_model(settings_from_dict({}).defaults)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    size = 0
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2_000):  # each record as the processor makes it, then dropped
            record = orjson.dumps({"event_id": f"e{i}", "features": "x" * 1500})
            size += len(record)
            desk.sent(f"e{i}", now, record)
        del record
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Records plus the dict's entries and tuples: well under 2x their bytes (orjson's
    # own objects would keep ~16 KiB each, ten times as much).
    assert grown < 2 * size, (grown, size)
    taken = desk.take_escalation("e7")
    assert taken is not None and orjson.loads(taken[1])["event_id"] == "e7"
