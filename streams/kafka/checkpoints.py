"""Per-model state checkpoints in a compacted Kafka topic, with the offsets they cover.

A checkpoint record is keyed by ``model_id`` and holds the model's monitor and
label-join snapshots plus, per input topic, the offset of the last message
applied to that state. The checkpoint topic has as many partitions as the
inference topic, and a model's record is written to the partition number its events
arrive on (explicitly, whatever partitioner its inference service uses: librdkafka's
default, CRC32, and the Java clients' murmur2 place one key differently): on
assignment a worker reads only the partitions it was given, and finds there every
model of them.

Records are pickled (the snapshots hold exact big integers that JSON cannot
carry) but read with an unpickler that resolves no global except the two
prediction classes: a record written by anyone else can build only plain data.

Where a read starts: the topic is compacted lazily (never its active segment, which
rolls hourly), so a partition holds every round's record of every model since its last
roll, and reading it from the beginning took most of a restart (hundreds of MB after
an hour of rounds). :class:`CheckpointStore` therefore knows, per partition it read or
wrote, the offset of each model's newest record (:attr:`CheckpointStore.newest`), and
:meth:`CheckpointStore.read_start` is the smallest of them: every model's newest
record lies at or after it. The ingest core commits it with the input offsets (commit
metadata, :func:`start_metadata`), and the next owner of the partition reads from
there (:func:`start_from_metadata`); without one (the Faust driver, older commits) it
reads from the beginning, as before.

Format (``b"VGC3"``): the record pickled (protocol 5) with its frames out of band
(:class:`~streams.processing.frames.Frame`: the label join's and review desk's sealed
chunks, compressed once when sealed), then::

    b"VGC3" | n: u32 | n frame lengths: u32 each | header length: u32
           | zstd(pickle) (level 1, through cramjam) | the n frames, as they are

The frames were most of a record's bytes and never change: appended as they are, a
round neither copies them into the pickle nor compresses them again (per model with a
full desk and join, in process, medians of 15: pickle 2.7-3.2 → 1.15 ms on the ingest
thread, compression 5.0 → 1.0 ms; the record ~8 % larger, 2.06 → 2.23 MB, the chunks
compressed one by one). Records written before are read too: ``b"VGC2"`` +
zstd(pickle(record)), and ``b"VGC1"`` + zlib(pickle(record)). A checkpoint round
pickles each model on the ingest thread between batches (the snapshot may share objects
with the live state) and compresses it on a thread of its own (:func:`pickled`,
:func:`compress`; see :mod:`streams.ingest.core`).
"""

from __future__ import annotations

import io
import logging
import pickle
import struct
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import cramjam

from streams.config import Settings
from streams.errors import VigilError
from streams.kafka.topics import MAX_CHECKPOINT_BYTES, topic_specs

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "CheckpointWrite",
    "Pickled",
    "compress",
    "decode",
    "encode",
    "pickled",
    "start_from_metadata",
    "start_metadata",
    "watermarks",
]

log = logging.getLogger(__name__)

MAGIC = b"VGC3"
#: Records written before frames were out of band: zstd(pickle(record)).
MAGIC_ZSTD = b"VGC2"
#: Records written before zstd: zlib.
MAGIC_ZLIB = b"VGC1"
_ALLOWED_GLOBALS = {
    ("detectors.prediction", "ClassPrediction"),
    ("detectors.prediction", "RegressionPrediction"),
    ("streams.processing.frames", "as_frame"),
}
_U32 = struct.Struct("<I")


def _no_leader_codes() -> frozenset[int]:
    from confluent_kafka import KafkaError

    return frozenset(
        (
            KafkaError.NOT_LEADER_FOR_PARTITION,
            KafkaError.LEADER_NOT_AVAILABLE,
            KafkaError._UNKNOWN_PARTITION,
            KafkaError.UNKNOWN_TOPIC_OR_PART,
        )
    )


#: Prefix of the commit metadata that carries a checkpoint partition's read start.
START_PREFIX = "vigil-checkpoints-from="


def start_metadata(start: int | None) -> str | None:
    """The commit metadata saying "read this partition's checkpoints from ``start``".

    >>> start_metadata(1234)
    'vigil-checkpoints-from=1234'
    >>> start_metadata(None) is None
    True
    """
    return None if start is None else f"{START_PREFIX}{start}"


def start_from_metadata(metadata: Any) -> int | None:
    """Inverse of :func:`start_metadata`; None for anything else (read from the beginning).

    >>> start_from_metadata("vigil-checkpoints-from=1234")
    1234
    >>> [start_from_metadata(m) for m in (None, "", "vigil-checkpoints-from=-1", "x=1")]
    [None, None, None, None]
    """
    if not isinstance(metadata, str) or not metadata.startswith(START_PREFIX):
        return None
    digits = metadata[len(START_PREFIX) :]
    if not digits.isdigit() or len(digits) > 19:
        return None
    return int(digits)


class CheckpointError(VigilError, ValueError):
    """A checkpoint record could not be decoded."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    model_id: str
    partition: int
    offsets: dict[str, int]  # input kind ("inference" | "labels") -> last applied offset
    state: dict[str, Any]  # ModelState.snapshot()
    written_at: float


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise CheckpointError(f"checkpoint refers to {module}.{name}, which is not allowed")


def encode(cp: Checkpoint) -> bytes:
    """The record's bytes: :func:`compress` of :func:`pickled`."""
    return compress(pickled(cp))


@dataclass(frozen=True, slots=True)
class Pickled:
    """A record pickled, not yet compressed: the pickle and its out-of-band frames."""

    header: memoryview
    frames: list[memoryview]


def pickled(cp: Checkpoint) -> Pickled:
    """The first half of :func:`encode`: the record pickled, not yet compressed.

    Buffers nothing else refers to or changes (the pickle's own, and frames, which are
    immutable), so it may be compressed on another thread while the state it was taken
    from changes.
    """
    record = {
        "model_id": cp.model_id,
        "partition": cp.partition,
        "offsets": cp.offsets,
        "state": cp.state,
        "written_at": cp.written_at,
    }
    buf = io.BytesIO()
    frames: list[memoryview] = []

    def out_of_band(frame: pickle.PickleBuffer) -> bool:
        frames.append(frame.raw())
        return False

    pickler = pickle.Pickler(buf, protocol=5, buffer_callback=out_of_band)
    # No memo: snapshots are acyclic plain data, mostly small tuples and strings seen
    # once (pending label joins), and memoizing each was most of the time (measured:
    # 75k pending predictions pickled in 44 ms instead of 146 ms). Shared objects are
    # written once per reference; loading is unchanged.
    pickler.fast = True
    pickler.dump(record)
    return Pickled(buf.getbuffer(), frames)


def compress(data: Pickled) -> bytes:
    """The second half of :func:`encode`: the record in the format of :data:`MAGIC`.
    cramjam releases the GIL while it compresses; the frames are not compressed again.
    """
    frames = data.frames
    header = cramjam.zstd.compress(data.header, level=1)
    lengths = struct.pack(f"<I{len(frames)}II", len(frames), *map(len, frames), len(header))
    return b"".join((MAGIC, lengths, header, *frames))


def _unzstd(body: bytes | memoryview) -> bytes:
    return bytes(cramjam.zstd.decompress(body))


def _split(raw: bytes) -> tuple[bytes, list[memoryview]]:
    """The pickle and the frames of a record in the format of :data:`MAGIC`."""
    view = memoryview(raw)
    at = len(MAGIC)
    (n,) = _U32.unpack_from(view, at)
    at += 4
    if n > (len(view) - at) // 4:
        raise CheckpointError(f"corrupt checkpoint: {n} frames in {len(raw)} bytes")
    sizes = struct.unpack_from(f"<{n}II", view, at)
    at += 4 * (n + 1)
    if at + sum(sizes) != len(view):
        raise CheckpointError("corrupt checkpoint: its lengths do not add up to its size")
    header = _unzstd(view[at : at + sizes[-1]])
    at += sizes[-1]
    frames = []
    for size in sizes[:-1]:
        frames.append(view[at : at + size])
        at += size
    return header, frames


def decode(raw: bytes) -> Checkpoint:
    """Inverse of :func:`encode`; raises :class:`CheckpointError` on anything else.

    >>> from streams.processing.frames import Frame
    >>> cp = Checkpoint("m", 2, {"inference": 41}, {"x": [1, 2], "f": Frame(b"f" * 9)}, 0.0)
    >>> raw = encode(cp)
    >>> decode(raw) == cp, raw.endswith(b"f" * 9)  # the frame appended as it is
    (True, True)
    >>> old = {"model_id": "m", "partition": 2, "offsets": {}, "state": {}, "written_at": 0.0}
    >>> decode(b"VGC2" + cramjam.zstd.compress(pickle.dumps(old)))  # written before VGC3
    Checkpoint(model_id='m', partition=2, offsets={}, state={}, written_at=0.0)
    >>> decode(b"VGC1" + zlib.compress(pickle.dumps(old)))  # written before zstd
    Checkpoint(model_id='m', partition=2, offsets={}, state={}, written_at=0.0)
    >>> decode(b"VGC1" + zlib.compress(pickle.dumps(print)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streams.kafka.checkpoints.CheckpointError: checkpoint refers to builtins.print, which ...
    >>> decode(raw[:-1])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streams.kafka.checkpoints.CheckpointError: corrupt checkpoint: its lengths do not add up ...
    """
    try:
        frames: list[memoryview] = []
        if raw.startswith(MAGIC):
            data, frames = _split(raw)
        elif raw.startswith(MAGIC_ZSTD):
            data = _unzstd(raw[len(MAGIC) :])
        elif raw.startswith(MAGIC_ZLIB):
            data = zlib.decompress(raw[len(MAGIC) :])
        else:
            raise CheckpointError("not a vigil checkpoint (bad magic)")
        record = _RestrictedUnpickler(io.BytesIO(data), buffers=frames).load()
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"corrupt checkpoint: {type(exc).__name__}: {exc}") from None
    try:
        return Checkpoint(
            str(record["model_id"]),
            int(record["partition"]),
            {str(k): int(v) for k, v in record["offsets"].items()},
            dict(record["state"]),
            float(record["written_at"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"malformed checkpoint record: {exc}") from None


class CheckpointWrite:
    """Checkpoint records sent together, and what the broker said of each so far.

    Delivery reports arrive from :meth:`CheckpointStore.poll` (or ``flush``); the
    write is ``done`` once every record it sent was acknowledged or failed.
    """

    def __init__(self) -> None:
        self.sent: list[str] = []  # model ids, in the order sent
        self.acked = 0
        self.failed: dict[str, str] = {}  # model id -> error

    @property
    def done(self) -> bool:
        return self.acked + len(self.failed) == len(self.sent)

    def _report(self, err: Any, msg: Any) -> None:
        if err is None:
            self.acked += 1
        else:
            self.failed[(msg.key() or b"").decode("utf-8", "replace")] = str(err)


class CheckpointStore:
    """Writes and reads checkpoints with confluent-kafka.

    :meth:`write` is synchronous (produce and flush); :meth:`send` and :meth:`poll`
    let the batch ingest write without waiting, and learn later what was delivered.
    """

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self.settings = settings
        self.topic = settings.checkpoint_topic
        self._kafka = settings.kafka.confluent_config()
        self._producer = Producer(
            {
                **self._kafka,
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": "murmur2_random",
                "compression.type": "none",  # records are zlib-compressed already
                "message.max.bytes": MAX_CHECKPOINT_BYTES + 65536,
                "linger.ms": 0,
                "logger": logging.getLogger("vigil.kafka.checkpoint"),
            }
        )
        self.written = 0
        self.bytes_written = 0
        #: Per checkpoint partition this store read (all of what its models need) or wrote
        #: to since: model_id -> offset of its newest record (see :meth:`read_start`).
        self.newest: dict[int, dict[str, int]] = {}

    def ensure_topic(self, timeout: float = 30.0) -> bool:
        """Create the checkpoint topic (compacted) if it does not exist; True if created.

        A worker calls this at start, so a deployment that ran ``vigil topics create``
        for another ``app_id`` (or not at all) still checkpoints.
        """
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(dict(self._kafka))
        if self.topic in admin.list_topics(timeout=timeout).topics:
            return False
        spec = topic_specs(self.settings)[self.topic]
        new = NewTopic(
            self.topic,
            num_partitions=spec["partitions"],
            replication_factor=self.settings.topics.replication_factor,
            config=spec["config"],
        )
        try:
            admin.create_topics([new], request_timeout=timeout)[self.topic].result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            return False
        return True

    def write(self, checkpoints: Iterable[Checkpoint], timeout: float = 30.0) -> int:
        """Produce and flush; raises :class:`VigilError` if anything is not delivered."""
        write = CheckpointWrite()
        for cp in checkpoints:
            self.send(cp.model_id, cp.partition, encode(cp), write)
        left = self._producer.flush(timeout)
        if left or write.failed:
            errors = list(write.failed.values())[:3]
            raise VigilError(f"checkpoint write failed: {left} undelivered, errors: {errors}")
        return len(write.sent)

    def send(self, model_id: str, partition: int, value: bytes, write: CheckpointWrite) -> None:
        """Produce one encoded checkpoint (see :func:`encode`) of a model whose events
        arrive on input ``partition``, to that partition, without waiting for it."""
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    key=model_id.encode(),
                    value=value,
                    partition=partition,
                    on_delivery=partial(self._delivered, write, model_id),
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)
        write.sent.append(model_id)
        self.written += 1
        self.bytes_written += len(value)

    def _delivered(self, write: CheckpointWrite, model_id: str, err: Any, msg: Any) -> None:
        if err is None:
            newest = self.newest.get(msg.partition())
            if newest is not None:  # a partition it never read: no start is known there
                newest[model_id] = max(newest.get(model_id, -1), msg.offset())
        write._report(err, msg)

    def read_start(self, partition: int) -> int | None:
        """Where a reader of ``partition`` finds every model's newest record: the smallest
        of their offsets, or None if unknown (this store did not read the partition, or
        it holds nothing yet). A model this worker dropped (evicted, or a partition
        given up) keeps its entry, so the start stays at or before its record too."""
        newest = self.newest.get(partition)
        return min(newest.values()) if newest else None

    def poll(self) -> None:
        """Serve delivery reports of the records :meth:`send` produced."""
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every record sent; returns how many are still undelivered."""
        return int(self._producer.flush(timeout))

    def read(
        self,
        partitions: Iterable[int],
        timeout: float = 60.0,
        start: Mapping[int, int] | None = None,
    ) -> dict[str, Checkpoint]:
        """The latest checkpoint of every model in the given partitions of the topic.

        ``start``: per partition, the offset to read from (a :meth:`read_start` committed
        by the partition's last owner): every model's newest record is at or after it.
        A partition without one, or with one outside what the partition holds, is read
        from its beginning. The topic is compacted lazily, so a partition may still hold
        many older records of each model: only the newest of each is decoded
        (decompressing and unpickling are most of a restore), or the one before it if the
        newest cannot be. Afterwards :attr:`newest` holds each partition's models."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

        parts = sorted(set(partitions))
        if not parts:
            return {}
        consumer = Consumer(
            {
                **self._kafka,
                "group.id": "vigil-checkpoint-reader",  # never used to commit
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                # Reading stops at each partition's high watermark, known beforehand; a
                # fetch that finds nothing new (one that brings the end-of-partition
                # event) returns after this instead of the default 500 ms.
                "fetch.wait.max.ms": 10,
                "fetch.message.max.bytes": MAX_CHECKPOINT_BYTES + 65536,
                "logger": logging.getLogger("vigil.kafka.checkpoint"),
            }
        )
        # model_id -> its newest raw records (newest last, at most two).
        raw: dict[str, list[bytes]] = {}
        newest: dict[int, dict[str, int]] = {p: {} for p in parts}
        records = size = skipped = 0
        started = time.perf_counter()
        try:
            todo = set()
            assign = []
            last: dict[int, int] = {}  # the offset of each partition's last record
            for p in parts:
                lo, hi = watermarks(consumer, TopicPartition(self.topic, p), timeout)
                if hi > lo:
                    todo.add(p)
                    last[p] = hi - 1
                    first = (start or {}).get(p)
                    if first is None or not lo <= first < hi:
                        first = OFFSET_BEGINNING
                    else:
                        skipped += first - lo
                    assign.append(TopicPartition(self.topic, p, first))
            consumer.assign(assign)
            deadline = time.monotonic() + timeout
            while todo and time.monotonic() < deadline:
                # consume() waits for all 500 or the timeout: a short one, so a few
                # records do not wait half a second.
                for msg in consumer.consume(500, timeout=0.02):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            todo.discard(msg.partition())
                            continue
                        raise VigilError(f"reading checkpoints failed: {err}")
                    key = (msg.key() or b"").decode("utf-8", "replace")
                    value = msg.value()
                    records += 1
                    size += len(value or b"")
                    part, offset = msg.partition(), msg.offset()
                    if part is not None and offset is not None:
                        newest[part][key] = offset
                        if offset >= last[part]:  # the end seen at the start: done
                            todo.discard(part)
                    if value is None:  # tombstone: the model was retired
                        raw.pop(key, None)
                        continue
                    kept = raw.setdefault(key, [])
                    kept.append(value)
                    if len(kept) > 2:
                        del kept[0]
            if todo:
                raise VigilError(f"timed out reading checkpoint partitions {sorted(todo)}")
        finally:
            consumer.close()
        self.newest.update(newest)
        fetched = time.perf_counter()
        out: dict[str, Checkpoint] = {}
        for key, values in raw.items():
            for value in reversed(values):
                try:
                    out[key] = decode(value)
                    break
                except CheckpointError as exc:
                    log.error("skipping bad checkpoint for %r: %s", key, exc)
        log.info(
            "checkpoint partitions %s: read %d records (%.1f MB; %d skipped before the "
            "committed starts) in %.3f s, decoded %d in %.3f s",
            parts,
            records,
            size / 1e6,
            skipped,
            fetched - started,
            len(out),
            time.perf_counter() - fetched,
        )
        return out

    def close(self) -> None:
        self._producer.flush(10)


def watermarks(consumer: Any, tp: Any, timeout: float) -> tuple[int, int]:
    """(low, high) of ``tp``, retrying while a new topic's partition has no leader yet."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout
    while True:
        try:
            lo, hi = consumer.get_watermark_offsets(tp, timeout=max(1.0, timeout / 10))
            return int(lo), int(hi)
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in _no_leader_codes():
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def restore_or_none(model_id: str, cp: Checkpoint) -> Any:
    """The :class:`~streams.processing.fleet.ModelState` of a checkpoint, or None (logged) if it
    cannot be restored (an older format, a corrupt record): the model then starts
    afresh from the messages after its last commit instead of stopping the worker."""
    from streams.processing.fleet import ModelState

    try:
        return ModelState.restore(cp.state, cp.partition, cp.offsets)
    except Exception as exc:
        log.error(
            "checkpoint of model %r cannot be restored (%s: %s); starting it afresh",
            model_id,
            type(exc).__name__,
            exc,
        )
        return None
