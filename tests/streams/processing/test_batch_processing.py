"""Processor.inference_batch (issue 18): a batch gives what its messages one at a time
give: the same outputs in the same order, the same state and the same counters."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from streams.config import settings_from_dict
from streams.dev.traffic import SyntheticModel
from streams.events.dead_letters import MessageSource
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

START = datetime(2026, 1, 1, tzinfo=UTC)


def stream(n: int, seed: int) -> list[bytes]:
    """Three models' events, with malformed messages, odd values and outliers."""
    rng = random.Random(seed)
    models = [SyntheticModel(f"m{k}", seed=seed + k, start=START) for k in range(3)]
    out = []
    for i in range(n):
        body, _ = rng.choice(models).event()
        if i > n // 2 and body.get("segment", {}).get("region") == "apac":
            body["features"]["x0"] += 3.0  # a shift in one segment
        r = rng.random()
        if r < 0.01:
            out.append(b'{"event_id": "x", "model_id": ')  # not JSON
            continue
        if r < 0.03:  # an absurd value: an outlier, out of range
            name = rng.choice([k for k, v in body["features"].items() if isinstance(v, float)])
            body["features"][name] = rng.choice([1e6, -1e6, 40.0])
        elif r < 0.05:  # null, an int, a missing feature, an unseen category
            name = rng.choice(list(body["features"]))
            body["features"][name] = rng.choice([None, 3, "zzz"])
        elif r < 0.06:
            body["features"].pop(rng.choice(list(body["features"])))
        elif r < 0.061:
            body["features"]["x0"] = math.inf if rng.random() < 0.5 else -0.0
        out.append(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY))
    return out


def processor(raw: dict[str, Any]) -> tuple[Processor, CollectorRegistry]:
    reg = CollectorRegistry()
    s = settings_from_dict(raw)
    return Processor(s, VigilMetrics(reg, s.worker.max_models), clock=None), reg


CONFIGS = [
    {"defaults": {"drift": {"reference_size": 300, "window": 100}}},
    {
        "defaults": {
            "drift": {"reference_size": 300, "window": 100},
            "escalation": {"outlier_quantile": 0.999},
            "segments": {"keys": ["region"], "features": ["x0"]},
        }
    },
]


@pytest.mark.parametrize("raw", CONFIGS)
def test_a_batch_gives_what_its_messages_one_at_a_time_give(raw: dict[str, Any]) -> None:
    messages = stream(6000, seed=7)
    one, reg_one = processor(raw)
    batched, reg_batched = processor(raw)
    out_one, out_batched = Outgoing(), Outgoing()
    sources = [MessageSource("in", i % 2, i, None) for i in range(len(messages))]
    for raw_msg, source in zip(messages, sources, strict=True):
        one.inference(raw_msg, source, out_one)
    rng = random.Random(1)
    pos = 0
    while pos < len(messages):
        size = rng.choice([1, 3, 40, 250])
        batched.inference_batch(
            list(zip(messages[pos : pos + size], sources[pos : pos + size], strict=True)),
            out_batched,
        )
        pos += size
    assert out_batched.escalations == out_one.escalations
    assert out_batched.alerts == out_one.alerts
    assert out_batched.dead_letters == out_one.dead_letters
    assert (batched.processed, batched.dead_lettered) == (one.processed, one.dead_lettered)
    assert batched.dead_lettered >= 30
    assert len(out_one.escalations) > 100
    reasons = {
        r["kind"] for _, v in out_one.escalations for r in orjson.loads(v).get("reasons", [])
    }
    assert "out_of_range" in reasons
    if "segments" in raw["defaults"]:  # segment alerts were compared too
        signals = {orjson.loads(v)["signal"] for _, v in out_one.alerts}
        assert "segment:region=apac:feature:x0" in signals, signals
    for model_id, state in one.fleet.items():
        other = batched.fleet.peek(model_id)
        assert other is not None
        assert repr(other.monitor.snapshot()) == repr(state.monitor.snapshot())
    assert samples(reg_batched) == samples(reg_one)


def samples(reg: CollectorRegistry) -> list[str]:
    """The exposition without ``_created`` (when each series was made: wall time), its
    lines sorted: a family's series come in the order of their first use, which a batch's
    segment alerts (published at its end) may change, and which means nothing."""
    return sorted(
        line for line in generate_latest(reg).decode().splitlines() if "_created" not in line
    )


def test_a_batch_did_its_columnar_work() -> None:
    """The prepared path ran (else the test above would compare per event with per event)."""
    proc, _ = processor(CONFIGS[0])
    messages = stream(3000, seed=8)
    sources = [MessageSource("in", 0, i, None) for i in range(len(messages))]
    calls = []
    proc.inference_batch(list(zip(messages[:1500], sources[:1500], strict=True)), Outgoing())
    for _, state in proc.fleet.items():
        drift = state.monitor.drift
        assert drift is not None
        original = drift.prepare

        def spy(events: Any, original: Any = original, drift: Any = drift) -> None:
            original(events)
            if drift._pre is not None:
                calls.append(sum(drift._pre.clean))

        drift.prepare = spy  # type: ignore[method-assign]
    proc.inference_batch(list(zip(messages[1500:], sources[1500:], strict=True)), Outgoing())
    assert calls and sum(calls) > 1000


def test_a_failing_segment_batch_is_logged_and_loses_no_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in the segment monitors' batch work costs their alerts, never the events."""
    proc, _ = processor(CONFIGS[1])
    messages = stream(600, seed=9)
    sources = [MessageSource("in", 0, i, None) for i in range(len(messages))]
    proc.inference_batch(list(zip(messages[:300], sources[:300], strict=True)), Outgoing())

    def broken(later: Any) -> Any:
        raise RuntimeError("boom")

    for _, state in proc.fleet.items():
        state.monitor.observe_segments = broken  # type: ignore[method-assign]
    out = Outgoing()
    before = proc.processed + proc.dead_lettered
    proc.inference_batch(list(zip(messages[300:], sources[300:], strict=True)), out)
    assert proc.processed + proc.dead_lettered - before == 300  # every message accounted
    assert out.escalations  # the batch's other outputs are there
    assert "segment monitors failed on a batch" in caplog.text


@pytest.mark.parametrize("segments", [False, True])
def test_a_batch_raises_the_estimates_alerts_where_one_at_a_time_does(segments: bool) -> None:
    """With labels between batches, the model's label-free accuracy estimate alerts in a
    batch where events one at a time alert (the segment monitors' alerts, put off to the
    batch's end, after it), in the same order, and its state is the same at the end of
    every call (the test above has no labels: its estimate never has a reference)."""
    raw: dict[str, Any] = {"defaults": {"drift": {"reference_size": 300, "window": 100}}}
    if segments:
        raw["defaults"]["segments"] = {"keys": ["region"], "features": ["x"]}
    rng = random.Random(5)
    stream = []
    for i in range(9000):
        # Confident, then less so (the estimate drops: an alert), then confident again.
        low = 4000 <= i < 6500
        c = round(rng.uniform(0.5, 0.75) if low else rng.uniform(0.75, 1.0), 4)
        region = rng.choice(("eu", "us", "apac"))
        x = rng.gauss(2.0 if region == "apac" and i > 5000 else 0.0, 1.0)
        stream.append((f"e{i}", c, rng.random() < c, region, x))
    one, reg_one = processor(raw)
    batched, reg_batched = processor(raw)
    out_one, out_batched = Outgoing(), Outgoing()

    def body(event_id: str, c: float, region: str, x: float, i: int) -> bytes:
        event = {
            "event_id": event_id,
            "model_id": "m",
            "ts": START.timestamp() + i * 0.01,
            "features": {"x": x},
            "prediction": {"label": "a", "confidence": c},
            "segment": {"region": region},
        }
        return orjson.dumps(event)

    def label(proc: Processor, out: Outgoing, event_id: str, right: bool, i: int) -> None:
        msg = {
            "event_id": event_id,
            "model_id": "m",
            "ts": START.timestamp() + i * 0.01,
            "label": "a" if right else "b",
            "source": "outcome",
        }
        proc.label(orjson.dumps(msg), MessageSource("lb", 0, i, b"m"), out)

    sizes = random.Random(6)
    for start in range(0, len(stream), 300):
        chunk = list(enumerate(stream[start : start + 300], start))
        messages = [
            (body(e, c, region, x, i), MessageSource("in", 0, i, b"m"))
            for i, (e, c, _, region, x) in chunk
        ]
        for message, source in messages:
            one.inference(message, source, out_one)
        pos = 0
        while pos < len(messages):
            size = sizes.choice([1, 7, 60, 300])
            batched.inference_batch(messages[pos : pos + size], out_batched)
            pos += size
        a, b = one.fleet.get("m").monitor.performance, batched.fleet.get("m").monitor.performance
        assert a is not None and b is not None
        assert b.snapshot() == a.snapshot()
        if start < 3000:  # a third of the first events labelled: the estimate's map
            for i, (e, _, right, _, _) in chunk:
                if i % 3 == 0:
                    label(one, out_one, e, right, i)
                    label(batched, out_batched, e, right, i)
    assert out_batched.alerts == out_one.alerts
    assert out_batched.escalations == out_one.escalations
    signals = [(orjson.loads(v)["signal"], orjson.loads(v)["state"]) for _, v in out_one.alerts]
    assert ("estimated_accuracy", "drift") in signals  # the case under test happens
    assert ("estimated_accuracy", "recovered") in signals
    if segments:
        assert any(s.startswith("segment:region=apac") for s, _ in signals), signals
    assert repr(batched.fleet.get("m").monitor.snapshot()) == repr(
        one.fleet.get("m").monitor.snapshot()
    )
    assert samples(reg_batched) == samples(reg_one)
