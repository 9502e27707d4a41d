"""A review desk's checkpoint: restored, it remembers the same escalations in the same
order, from today's compressed chunks, version 2's columns of records and version 1's
item per escalation."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import orjson

from streams.config import settings_from_dict
from streams.processing.review_desk import ReviewDesk

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def busy_desk() -> ReviewDesk:
    settings = settings_from_dict({"defaults": {"review": {"max_open": 50}}})
    desk = ReviewDesk.for_model(settings.defaults)
    for i in range(80):  # 30 forgotten, oldest first
        desk.sent(f"e{i}", T0 + timedelta(seconds=i), orjson.dumps({"event_id": f"e{i}"}))
    for i in (35, 40, 79):
        assert desk.take_escalation(f"e{i}") is not None
    return desk


def remembered(desk: ReviewDesk) -> list[tuple[str, float, bytes]]:
    return [(e, t, desk._records.get(loc)) for e, (t, loc) in desk._sent.items()]


def test_a_restored_desk_remembers_the_same_escalations_in_the_same_order() -> None:
    desk = busy_desk()
    snap = desk.snapshot()
    restored = ReviewDesk.restore(pickle.loads(pickle.dumps(snap)))
    assert remembered(restored) == remembered(desk) and len(remembered(desk)) == 47
    assert restored.forgotten == desk.forgotten == 30
    assert restored.snapshot() == snap
    # Both forget the same one next (the oldest), and give back the same record.
    for d in (desk, restored):
        d.sent("new", T0 + timedelta(seconds=100), b"{}")
    assert remembered(restored) == remembered(desk)
    assert restored.take_escalation("e50") == desk.take_escalation("e50") is not None


def older_snapshots(desk: ReviewDesk) -> list[dict[str, object]]:
    """The desk's snapshot as versions 1 and 2 wrote it: the records themselves."""
    now = desk.snapshot()
    rows = [(e, (t, r)) for e, t, r in remembered(desk)]
    base = {k: v for k, v in now.items() if k != "records"}
    columns = {
        "event_id": tuple(e for e, _ in rows),
        "at": tuple(t for _, (t, _) in rows),
        "record": tuple(r for _, (_, r) in rows),
    }
    return [{**base, "version": 1, "sent": rows}, {**base, "version": 2, "sent": columns}]


def test_version_1_and_2_checkpoints_are_read_as_they_were() -> None:
    desk = busy_desk()
    for old in older_snapshots(desk):
        restored = ReviewDesk.restore(pickle.loads(pickle.dumps(old)))
        assert remembered(restored) == remembered(desk), old["version"]
        assert restored.forgotten == desk.forgotten
        assert remembered(ReviewDesk.restore(restored.snapshot())) == remembered(desk)


def test_a_redelivered_escalation_is_the_newest_with_the_newer_record() -> None:
    """Sent again (its event redelivered), an escalation is remembered once, with the
    record and time of the last send, and forgotten last: the desk stays in the order of
    escalation times, which its horizon relies on."""
    desk = busy_desk()
    first, second = remembered(desk)[0][0], remembered(desk)[1][0]
    again = T0 + timedelta(seconds=200)
    desk.sent(first, again, b'{"again":true}')
    assert remembered(desk)[-1] == (first, again.timestamp(), b'{"again":true}')
    assert len(remembered(desk)) == 47 and remembered(desk)[0][0] == second
    times = [t for _, t, _ in remembered(desk)]
    assert times == sorted(times)
    restored = ReviewDesk.restore(pickle.loads(pickle.dumps(desk.snapshot())))
    assert remembered(restored) == remembered(desk)
