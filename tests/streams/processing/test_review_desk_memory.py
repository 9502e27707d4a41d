"""The review desk's remembered escalations weigh less than their bytes (compressed), not
orjson's buffers, and stay bounded however their labels come."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import orjson

from streams.config import settings_from_dict
from streams.processing.review_desk import ReviewDesk

FEATURES = {f"f{j}": j * 1.37 for j in range(20)} | {"country": "DE", "plan": "pro"}


def test_remembered_escalations_cost_about_their_size() -> None:
    desk = ReviewDesk.for_model(settings_from_dict({}).defaults)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    size = 0
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2_000):  # each record as the processor makes it, then dropped
            record = orjson.dumps({"event_id": f"e{i}", "features": FEATURES, "p": i / 7})
            size += len(record)
            desk.sent(f"e{i}", now, record)
        del record
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Compressed records plus the dict's entries and tuples: less than the records' own
    # bytes (orjson's objects would keep ~16 KiB each, ten times as much).
    assert grown < size, (grown, size)
    taken = desk.take_escalation("e7")
    assert taken is not None and orjson.loads(taken[1])["event_id"] == "e7"


def test_records_taken_here_and_there_do_not_pin_their_chunks() -> None:
    """Nine labels in ten arrive, the tenth never: the live records are spread thinly
    over every chunk ever sealed until the desk repacks them."""
    settings = settings_from_dict({"defaults": {"review": {"max_open": 500}}})
    desk = ReviewDesk.for_model(settings.defaults)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = orjson.dumps({"features": FEATURES})
    for i in range(50_000):
        desk.sent(f"e{i}", now, record)
        if i % 10:
            assert desk.take_escalation(f"e{i}") == (now.timestamp(), record)
    chunks = desk._records
    assert chunks.live == len(desk._sent) == 499  # the cap, less the last one (taken)
    assert chunks.sealed_chunks <= 2 * (500 // chunks.chunk_size) + 3, chunks.sealed_chunks
    assert all(desk._records.get(loc) == record for _, loc in desk._sent.values())
