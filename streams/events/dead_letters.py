"""Dead letters (SPEC §6): a message vigil could not process, kept with its reason."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from streams.errors import DeadLetterReason

__all__ = ["DeadLetter", "MessageSource"]


class MessageSource(msgspec.Struct, frozen=True, gc=False):
    """Where a consumed message came from.

    Made once per consumed message: a msgspec Struct, built in C in one step, where a
    frozen dataclass set each of its fields through ``object.__setattr__`` (~1.5 % of a
    worker's instructions per event, ``benchmarks/processor.py``). Frozen, compared by
    value; not tracked by the garbage collector (it holds no container).

    >>> MessageSource("in", 0, 5, b"k").as_dict()
    {'topic': 'in', 'partition': 0, 'offset': 5, 'key': 'k'}
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None

    def as_dict(self) -> dict[str, Any]:
        key = None
        if self.key is not None:
            try:
                key = self.key.decode("utf-8")
            except UnicodeDecodeError:
                key = "b64:" + base64.b64encode(self.key).decode("ascii")
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset, "key": key}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that ends in the dead-letter topic, with the original bytes.

    >>> from datetime import UTC, datetime
    >>> dl = DeadLetter("schema", "ts is required", MessageSource("t", 0, 5, b"m"),
    ...                 datetime(2026, 1, 1, tzinfo=UTC), b"{}", model_id=None)
    >>> d = dl.as_dict(); d["payload_b64"], d["source"]["offset"], d["received_at"]
    ('e30=', 5, '2026-01-01T00:00:00+00:00')
    """

    reason: DeadLetterReason
    detail: str
    source: MessageSource
    received_at: datetime
    payload: bytes
    model_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source.as_dict(),
            "received_at": self.received_at.isoformat(),
            "payload_b64": base64.b64encode(self.payload).decode("ascii"),
        }
