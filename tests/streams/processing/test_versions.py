"""Model versions in the worker's core: per-version state and series, lifecycle, canary."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from detectors.performance import PerformanceEstimator
from detectors.prediction import ClassPrediction
from detectors.reference import ReferenceBuilder
from streams.config import settings_from_dict
from streams.errors import ConfigError
from streams.events.dead_letters import MessageSource
from streams.kafka.checkpoints import Checkpoint, decode, encode
from streams.processing.fleet import Fleet, ModelState
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor
from streams.processing.versions import OTHER_VERSION, SETTLE_AT, VersionBook

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    """The worker's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Harness:
    def __init__(self, **raw: Any) -> None:
        self.settings = settings_from_dict(raw)
        self.registry = CollectorRegistry()
        self.fleet = Fleet(self.settings)
        metrics = VigilMetrics(
            self.registry, self.settings.worker.max_models, readings=self.fleet.readings
        )
        self.clock = Clock()
        self.proc = Processor(self.settings, metrics, self.fleet, clock=self.clock)
        self.out = Outgoing()
        self.offset = 0
        self.n = 0

    def event(self, version: str | None, label: str = "a", confidence: float = 0.9) -> str:
        self.n += 1
        event_id = f"e{self.n}"
        body: dict[str, Any] = {
            "event_id": event_id,
            "model_id": "m",
            "ts": self.clock.now.timestamp(),
            "features": {"x": 1.0},
            "prediction": {"label": label, "confidence": confidence},
        }
        if version is not None:
            body["model_version"] = version
        self.offset += 1
        self.proc.inference(orjson.dumps(body), MessageSource("in", 0, self.offset, b"m"), self.out)
        return event_id

    def label(self, event_id: str, truth: str) -> None:
        body = {
            "event_id": event_id,
            "model_id": "m",
            "ts": self.clock.now.timestamp(),
            "label": truth,
            "source": "outcome",
        }
        self.offset += 1
        self.proc.label(orjson.dumps(body), MessageSource("lb", 0, self.offset, b"m"), self.out)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"model": "m", **labels})

    def versions_in_series(self) -> set[str]:
        found = set()
        for family in self.registry.collect():
            for s in family.samples:
                if s.name == "vigil_version_events_total":
                    found.add(s.labels["version"])
        return found

    def alerts(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body in self.out.alerts]


def book(h: Harness) -> VersionBook:
    versions = h.fleet.get("m").versions
    assert versions is not None
    return versions


def test_each_version_has_its_own_counts_and_an_event_without_one_is_unknown() -> None:
    h = Harness(defaults={"escalation": {"min_confidence": 0.8}})
    for _ in range(3):
        h.event("v1", confidence=0.9)
    h.event("v2", confidence=0.5)  # escalated: low confidence
    h.event(None)
    assert h.sample("vigil_version_events_total", version="v1") == 3
    assert h.sample("vigil_version_events_total", version="v2") == 1
    assert h.sample("vigil_version_events_total", version="unknown") == 1
    assert h.sample("vigil_version_escalations_total", version="v2") == 1
    assert h.sample("vigil_version_escalations_total", version="v1") == 0
    assert h.sample("vigil_version_confidence_count", version="v1") == 3
    assert h.sample("vigil_version_confidence_bucket", version="v2", le="0.5") == 1
    # The model-level series still count every version.
    assert h.sample("vigil_events_total", outcome="processed") == 5


def test_an_idle_version_is_retired_its_series_and_state_dropped() -> None:
    h = Harness(defaults={"versions": {"idle_seconds": 600}})
    h.event("v1")
    h.clock.now += timedelta(seconds=300)
    h.event("v2")
    h.clock.now += timedelta(seconds=301)  # v1 idle for 601 s, v2 for 301 s
    h.event("v2")
    assert set(dict(book(h).items())) == {"v2"}
    assert h.versions_in_series() == {"v2"}
    assert "v1" not in h.fleet.get("m").snapshot()["versions"]["live"]
    # A model with no traffic at all retires its versions too (once per batch).
    h.clock.now += timedelta(seconds=600)
    h.proc.adjudicate_due(h.out)
    assert len(book(h)) == 0 and h.versions_in_series() == set()
    assert h.fleet.get("m").dirty  # the next checkpoint drops them
    # A retired version that comes back starts afresh.
    h.event("v1")
    assert h.sample("vigil_version_events_total", version="v1") == 1


def test_versions_beyond_max_live_count_under_other_until_a_slot_frees() -> None:
    h = Harness(defaults={"versions": {"max_live": 2, "idle_seconds": 100}})
    h.event("v1")
    h.event("v2")
    for v in ("v3", "v4", "v3"):
        h.event(v)
    assert h.versions_in_series() == {"v1", "v2", OTHER_VERSION}
    assert h.sample("vigil_version_events_total", version=OTHER_VERSION) == 3
    h.clock.now += timedelta(seconds=50)
    h.event("v2")
    h.clock.now += timedelta(seconds=60)  # v1 and _other idle 110 s: retired; v3 gets a slot
    h.event("v3")
    assert h.versions_in_series() == {"v2", "v3"}
    assert h.sample("vigil_version_events_total", version="v3") == 1


def test_labels_reach_the_version_that_made_the_prediction() -> None:
    h = Harness()
    ids = [(h.event("v1", label="a"), "v1") for _ in range(20)]
    ids += [(h.event("v2", label="a"), "v2") for _ in range(20)]
    random.Random(3).shuffle(ids)
    for event_id, version in ids:
        h.label(event_id, "a" if version == "v1" else "b")  # v1 right, v2 wrong
    assert h.sample("vigil_version_accuracy", version="v1") == 1.0
    assert h.sample("vigil_version_accuracy", version="v2") == 0.0
    assert h.sample("vigil_accuracy") == 0.5  # the model: every version


def test_a_rollout_that_predicts_otherwise_fires_the_canary_and_retiring_clears_it() -> None:
    h = Harness(defaults={"versions": {"idle_seconds": 3600}})
    rng = random.Random(5)
    old, new = "aaaaaabbbc", "aaaabbbccc"
    for _ in range(2000):
        h.event("v1", label=rng.choice(old))
    signal = "version:v2:prediction"
    fired_at = None
    for i in range(3000):
        if rng.random() < 0.2:
            h.event("v2", label=rng.choice(new))
            if fired_at is None and any(a["signal"] == signal for a in h.alerts()):
                fired_at = book(h).get("v2").events  # type: ignore[union-attr]
        else:
            h.event("v1", label=rng.choice(old))
        h.clock.now += timedelta(seconds=1) if i % 10 == 0 else timedelta(0)
    assert fired_at is not None and fired_at <= 500
    alert = next(a for a in h.alerts() if a["signal"] == signal)
    assert alert["state"] == "drift" and alert["model_version"] == "v2"
    assert h.sample("vigil_drift_active", signal=signal) == 1.0
    assert h.sample("vigil_alerts_total", signal=signal, state="drift") == 1
    # v1 stops serving: an hour later it is retired, and v2's canary has nothing to
    # compare with; when v2 too goes idle, its series go.
    for _ in range(10):
        h.clock.now += timedelta(seconds=400)
        h.event("v2", label=rng.choice(new))
    assert book(h).get("v2").canary is None  # type: ignore[union-attr]
    assert h.sample("vigil_drift_active", signal=signal) is None
    h.clock.now += timedelta(seconds=3601)
    h.proc.adjudicate_due(h.out)
    assert h.sample("vigil_alerts_total", signal=signal, state="drift") is None
    assert h.versions_in_series() == set()


def test_an_identical_rollout_stays_quiet() -> None:
    h = Harness()
    rng = random.Random(8)
    h.event("v1")  # the incumbent: v2's canary compares with it
    for _ in range(5000):
        h.event("v2" if rng.random() < 0.3 else "v1", label=rng.choice("aaaaaabbbc"))
    assert not any(a["signal"].startswith("version:") for a in h.alerts())
    assert book(h).get("v2").canary.new_seen > 1000  # type: ignore[union-attr]


def test_versions_survive_a_checkpoint_and_an_older_checkpoint_restores_without_them() -> None:
    h = Harness(defaults={"versions": {"idle_seconds": 100}})
    for _ in range(300):
        h.event("v1", label="a")
    h.clock.now += timedelta(seconds=60)
    for _ in range(300):
        h.event("v2", label="b")
    state = h.fleet.get("m")
    # Through the checkpoint store's own codec (its unpickler builds plain data only).
    snapshot = decode(
        encode(Checkpoint("m", 0, {"inference": h.offset}, state.snapshot(), 0.0))
    ).state
    restored = ModelState.restore(snapshot)
    assert restored.versions is not None
    assert dict(restored.versions.items()).keys() == {"v1", "v2"}
    canary = restored.versions.get("v2").canary  # type: ignore[union-attr]
    assert canary is not None and canary.snapshot() == state.versions.get("v2").canary.snapshot()  # type: ignore[union-attr]
    # Put back and continued: v1 retires and the next checkpoint no longer holds it.
    fleet = Fleet(h.settings)
    fleet.put("m", restored)
    restored.versions.retire_idle(T0.timestamp() + 150)
    assert set(restored.snapshot()["versions"]["live"]) == {"v2"}
    older = {k: v for k, v in snapshot.items() if k != "versions"}
    old_state = ModelState.restore(older)
    assert old_state.versions is None
    fleet.put("m2", old_state)
    assert old_state.versions is not None and len(old_state.versions) == 0


def test_a_label_join_entry_from_before_versions_still_joins() -> None:
    h = Harness()
    h.event("v1")
    join = h.fleet.get("m").join
    # What an older checkpoint holds: a 3-tuple without the version slot.
    join.add_prediction("m", "old", ("c", "a", 0.9), T0, False, None)
    h.label("old", "a")
    assert h.sample("vigil_labels_total", outcome="joined") == 1
    assert h.sample("vigil_accuracy") == 1.0
    assert h.sample("vigil_version_accuracy", version="v1") is None


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        ({"max_live": 0}, "max_live"),
        ({"idle_seconds": 0}, "idle_seconds"),
        ({"canary_window": 310}, "canary_window must be a multiple of canary_step"),
        ({"canary_max_window": 250}, "canary_max_window must be at least canary_window"),
    ],
)
def test_config_check_explains_bad_version_settings(versions: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_dict({"defaults": {"versions": versions}})


def test_a_version_drifts_against_its_own_profile_or_its_own_first_events(tmp_path: Any) -> None:
    # v2's profile: confidences around 0.9. v1 has none and learns its own.
    rng = random.Random(12)
    builder = ReferenceBuilder("m", "v2")
    for _ in range(2000):
        builder.add({"x": 1.0}, ClassPrediction("a", min(1.0, max(0.5, rng.gauss(0.9, 0.03)))))
    path = tmp_path / "v2.json"
    builder.build(created_at=T0).save(path)
    h = Harness(
        models={
            "m": {
                "reference_by_version": {"v2": str(path)},
                "drift": {"reference_size": 300},
                "versions": {"output_drift": True},
            }
        }
    )
    for _ in range(400):
        h.event("v1", confidence=min(1.0, max(0.5, rng.gauss(0.7, 0.05))))
    v1 = book(h).get("v1")
    assert v1 is not None and v1.drift is not None
    assert v1.drift.reference is None and v1.drift.learned_reference is not None
    # v2 serves confidences around 0.7 (v1's): against its own profile that is drift,
    # while v1, against its own, stays calm: neither version's reference is the other's.
    for _ in range(600):
        h.event("v2", confidence=min(1.0, max(0.5, rng.gauss(0.7, 0.05))))
        h.event("v1", confidence=min(1.0, max(0.5, rng.gauss(0.7, 0.05))))
    signals = {(a["signal"], a["state"]) for a in h.alerts()}
    assert ("version:v2:confidence", "drift") in signals
    assert not any(sig == "version:v1:confidence" for sig, _ in signals)
    v2 = book(h).get("v2")
    assert v2 is not None and v2.drift is not None and v2.drift.reference is not None
    assert h.sample("vigil_drift_active", signal="version:v2:confidence") == 1.0


def test_without_output_drift_only_a_version_with_a_profile_gets_one(tmp_path: Any) -> None:
    builder = ReferenceBuilder("m", "v2")
    for i in range(200):
        builder.add({}, ClassPrediction("a", 0.6 + (i % 40) / 100))
    path = tmp_path / "v2.json"
    builder.build(created_at=T0).save(path)
    h = Harness(models={"m": {"reference_by_version": {"v2": str(path)}}})
    h.event("v1")
    h.event("v2")
    assert book(h).get("v1").drift is None  # type: ignore[union-attr]
    assert book(h).get("v2").drift is not None  # type: ignore[union-attr]
    plain = Harness()
    plain.event("v1")
    assert book(plain).get("v1").drift is None  # type: ignore[union-attr]


def test_a_versions_estimate_is_settled_by_the_end_of_every_call() -> None:
    """VersionBook.observe holds a version's confidences back and the estimate takes them a
    run at a time: batches as the worker runs them, with labels between, leave every
    version's estimate as events one at a time do, at the end of each call (labels
    settle before they learn), so its series reads the same."""
    rng = random.Random(11)
    stream = []
    for i in range(4000):
        version = "v1" if rng.random() < 0.5 else "v2"
        confidence = round(rng.uniform(0.5, 1.0), 3)
        right = rng.random() < (confidence if version == "v1" else confidence - 0.3)
        stream.append((f"e{i}", version, confidence, right))
    one, batched = Harness(), Harness()

    def body(event_id: str, version: str, confidence: float, h: Harness) -> bytes:
        return orjson.dumps(
            {
                "event_id": event_id,
                "model_id": "m",
                "model_version": version,
                "ts": h.clock.now.timestamp(),
                "features": {"x": 1.0},
                "prediction": {"label": "a", "confidence": confidence},
            }
        )

    def same_estimates(one: Harness, batched: Harness) -> None:
        for version in ("v1", "v2"):
            a, b = book(one).get(version), book(batched).get(version)
            assert a is not None and b is not None
            assert a.unsettled == b.unsettled == []  # nothing held between calls
            assert a.performance is not None and b.performance is not None
            assert b.performance.snapshot() == a.performance.snapshot()

    def labels(h: Harness, done: list[tuple[str, str, float, bool]]) -> None:
        for event_id, _, _, right in done:
            if int(event_id[1:]) % 3 == 0:  # a third of them labelled
                h.label(event_id, "a" if right else "b")

    for start in range(0, len(stream), 250):
        chunk = stream[start : start + 250]
        for event_id, version, confidence, _ in chunk:
            one.offset += 1
            source = MessageSource("in", 0, one.offset, b"m")
            one.proc.inference(body(event_id, version, confidence, one), source, one.out)
        messages = []
        for event_id, version, confidence, _ in chunk:
            batched.offset += 1
            source = MessageSource("in", 0, batched.offset, b"m")
            messages.append((body(event_id, version, confidence, batched), source))
        batched.proc.inference_batch(messages, batched.out)
        same_estimates(one, batched)
        labels(one, chunk)
        labels(batched, chunk)
        same_estimates(one, batched)
    for version in ("v1", "v2"):
        reading = batched.sample("vigil_version_estimated_accuracy", version=version)
        assert reading is not None
        assert reading == one.sample("vigil_version_estimated_accuracy", version=version)
    # The case under test: labels shaped both estimates' maps, and they differ.
    v1, v2 = book(batched).get("v1"), book(batched).get("v2")
    assert v1 is not None and v2 is not None and v1.performance and v2.performance
    assert v1.performance.reference is not None and v2.performance.reference is not None
    assert v1.performance.reference > v2.performance.reference + 0.2


def test_a_version_book_settles_before_a_snapshot_and_within_its_bound() -> None:
    b = VersionBook(performance={"window": 300, "min_events": 50})
    expected = PerformanceEstimator(window=300, min_events=50)
    rng = random.Random(2)
    for i in range(3 * SETTLE_AT):
        c = rng.random()
        b.observe("v1", "a", c, float(i))
        expected.update(c)
        stats = b.get("v1")
        assert stats is not None and len(stats.unsettled) < SETTLE_AT  # bounded
        if i % 7 == 0:  # a label settles what came before it first
            right = rng.random() < c
            b.observe_label("v1", c, right, 1.0)
            expected.observe_label(c, right)
    assert expected.reference is not None  # the labels set the reference
    assert b.snapshot()["live"]["v1"]["performance"] == expected.snapshot()
    stats = b.get("v1")
    assert stats is not None and stats.unsettled == []
