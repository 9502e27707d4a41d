"""The checkpoint record's encoding: zstd now, zlib records still read, damage refused."""

from __future__ import annotations

import pickle
import zlib

import pytest

from streams.kafka.checkpoints import MAGIC, Checkpoint, CheckpointError, decode, encode

STATE = {"monitor": {"n": 10**30, "values": [0.1] * 1000}, "join": [("c", "yes", 0.9)] * 200}


def test_a_record_round_trips_and_is_zstd() -> None:
    cp = Checkpoint("m", 3, {"inference": 7, "labels": 2}, STATE, 1.5)
    raw = encode(cp)
    assert raw.startswith(MAGIC) and MAGIC == b"VGC2"
    assert raw[4:8] == b"\x28\xb5\x2f\xfd"  # the zstd frame magic
    assert decode(raw) == cp
    assert len(raw) < len(pickle.dumps(cp.state)) / 5  # compressed


def test_a_record_written_before_zstd_is_read() -> None:
    record = {
        "model_id": "m",
        "partition": 1,
        "offsets": {"inference": 4},
        "state": STATE,
        "written_at": 2.0,
    }
    old = b"VGC1" + zlib.compress(pickle.dumps(record, protocol=5), 1)
    assert decode(old) == Checkpoint("m", 1, {"inference": 4}, STATE, 2.0)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"VGC3" + b"x" * 10,
        b"VGC2",
        b"VGC2" + b"\x28\xb5\x2f\xfd" + b"\x00" * 20,  # a zstd frame header, then garbage
        b"VGC1" + b"not zlib",
    ],
)
def test_damaged_records_are_refused_with_a_checkpoint_error(raw: bytes) -> None:
    with pytest.raises(CheckpointError):
        decode(raw)


def test_a_truncated_record_is_refused() -> None:
    raw = encode(Checkpoint("m", 0, {}, STATE, 0.0))
    with pytest.raises(CheckpointError):
        decode(raw[: len(raw) // 2])
