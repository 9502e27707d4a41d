"""The checkpoint record's encoding: frames out of band, older records still read, damage
refused."""

from __future__ import annotations

import pickle
import struct
import zlib

import cramjam
import pytest

from streams.kafka.checkpoints import MAGIC, Checkpoint, CheckpointError, decode, encode
from streams.processing.frames import Frame, compressed

STATE = {"monitor": {"n": 10**30, "values": [0.1] * 1000}, "join": [("c", "yes", 0.9)] * 200}
CHUNKS = [compressed(b"row %d," % i * 500) for i in range(3)]
FRAMED = {**STATE, "chunks": CHUNKS}


def _record(state: object) -> dict[str, object]:
    return {
        "model_id": "m",
        "partition": 1,
        "offsets": {"inference": 4},
        "state": state,
        "written_at": 2.0,
    }


def _vgc3(header: bytes, frames: list[bytes]) -> bytes:
    """A record in the VGC3 layout around any pickle and frames."""
    body = cramjam.zstd.compress(header, level=1)
    lengths = struct.pack(f"<I{len(frames)}II", len(frames), *map(len, frames), len(body))
    return b"".join((b"VGC3", lengths, bytes(body), *frames))


def test_a_record_round_trips_with_its_frames_appended_as_they_are() -> None:
    cp = Checkpoint("m", 3, {"inference": 7, "labels": 2}, FRAMED, 1.5)
    raw = encode(cp)
    assert raw.startswith(MAGIC) and MAGIC == b"VGC3"
    (n,) = struct.unpack_from("<I", raw, 4)
    assert n == len(CHUNKS)
    assert raw.endswith(b"".join(CHUNKS))  # not copied into the pickle, not recompressed
    header_at = 4 + 4 * (n + 2)
    assert raw[header_at : header_at + 4] == b"\x28\xb5\x2f\xfd"  # the pickle: zstd
    back = decode(raw)
    assert back == cp
    assert all(type(c) is Frame for c in back.state["chunks"])  # out of band again next time
    assert len(raw) < len(pickle.dumps(cp.state)) / 5  # compressed


def test_a_record_without_frames_round_trips() -> None:
    cp = Checkpoint("m", 0, {}, STATE, 0.0)
    assert decode(encode(cp)) == cp


@pytest.mark.parametrize("magic", [b"VGC1", b"VGC2"])
def test_records_written_before_are_read(magic: bytes) -> None:
    data = pickle.dumps(_record(FRAMED), protocol=5)  # frames in band
    body = zlib.compress(data, 1) if magic == b"VGC1" else bytes(cramjam.zstd.compress(data))
    assert decode(magic + body) == Checkpoint("m", 1, {"inference": 4}, FRAMED, 2.0)


def _frames_pickle(n: int) -> bytes:
    frames: list[pickle.PickleBuffer] = []
    data = pickle.dumps(_record(CHUNKS[:n]), protocol=5, buffer_callback=frames.append)
    assert len(frames) == n
    return data


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"VGC4" + b"x" * 10,
        b"VGC3" + b"x" * 10,
        b"VGC3" + struct.pack("<I", 2**31),  # more frames than the record has bytes
        b"VGC3" + struct.pack("<III", 1, 10**6, 4) + b"\x00" * 20,  # lengths too long
        # a pickle that asks for two frames where the record has one
        _vgc3(_frames_pickle(2), [bytes(CHUNKS[0])]),
        b"VGC2",
        b"VGC2" + b"\x28\xb5\x2f\xfd" + b"\x00" * 20,  # a zstd frame header, then garbage
        b"VGC1" + b"not zlib",
    ],
)
def test_damaged_records_are_refused_with_a_checkpoint_error(raw: bytes) -> None:
    with pytest.raises(CheckpointError):
        decode(raw)


def test_a_frame_made_of_a_size_is_refused() -> None:
    from streams.processing import frames

    class Size:
        def __reduce__(self) -> tuple[object, tuple[int]]:
            return frames.as_frame, (10**12,)

    header = pickle.dumps(_record(Size()), protocol=5)
    with pytest.raises(CheckpointError, match="a frame must be bytes, not int"):
        decode(_vgc3(header, []))


def test_a_truncated_record_is_refused() -> None:
    raw = encode(Checkpoint("m", 0, {}, FRAMED, 0.0))
    for cut in (len(raw) // 2, len(raw) - 1, 9):
        with pytest.raises(CheckpointError):
            decode(raw[:cut])
