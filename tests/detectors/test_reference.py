import random
from datetime import UTC, datetime

import pytest

from detectors.errors import SnapshotError
from detectors.prediction import ClassPrediction, RegressionPrediction
from detectors.reference import (
    ReferenceBuilder,
    ReferenceProfile,
    categorical_reference,
    numeric_reference,
)


def _events(n: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(n):
        yield (
            {
                "age": rng.gauss(40, 10) if rng.random() > 0.05 else None,
                "plan": rng.choice(["basic", "basic", "pro", "team"]),
                "flag": rng.random() < 0.3,
            },
            ClassPrediction(rng.choice(["stay", "go"]), rng.uniform(0.5, 1.0)),
        )


def test_profile_round_trips_through_dict_and_file(tmp_path) -> None:
    profile = ReferenceBuilder.from_events(_events(3000), "churn", "v1", bins=10)
    d = profile.to_dict()
    assert d["format"] == "vigil.reference/1"
    assert d["model_id"] == "churn" and d["model_version"] == "v1"
    assert d["events"] == 3000
    assert datetime.fromisoformat(d["created_at"]).utcoffset().total_seconds() == 0
    assert ReferenceProfile.from_dict(d) == profile
    path = tmp_path / "ref.json"
    profile.save(path)
    assert ReferenceProfile.load(path) == profile


def test_profile_contents() -> None:
    profile = ReferenceBuilder.from_events(_events(5000), "churn", bins=10, top_k=2)
    age = profile.features["age"]
    assert age["type"] == "numeric"
    assert 0.03 < age["missing"] / age["events"] < 0.07
    assert len(age["edges"]) == 9 and sum(age["counts"]) == age["n"]
    assert age["min"] < 10 and age["max"] > 70
    plan = profile.features["plan"]
    assert list(plan["top"]) == ["basic", "pro"] and plan["other"] > 0
    assert set(plan["known"]) == {"basic", "pro", "team"}
    assert profile.features["flag"]["known"] == ["false", "true"]
    assert profile.confidence is not None and profile.confidence["type"] == "numeric"
    assert profile.prediction is not None and set(profile.prediction["top"]) == {"stay", "go"}


def test_builder_memory_is_bounded_and_counts_stay_exact() -> None:
    builder = ReferenceBuilder("m", sample_size=500, max_features=3)
    rng = random.Random(1)
    for i in range(20_000):
        feats = {f"f{j}": rng.random() for j in range(5)}
        feats[f"junk{i}"] = 1.0  # a new name every event
        builder.add(feats, RegressionPrediction(rng.random()))
    assert len(builder._sample) == 500
    profile = builder.build(created_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert list(profile.features) == ["f0", "f1", "f2"]
    assert profile.features["f0"]["events"] == 20_000
    assert profile.features["f0"]["n"] == 500
    assert profile.prediction is not None and profile.prediction["type"] == "numeric"


def test_wrong_types_are_counted_not_fatal() -> None:
    builder = ReferenceBuilder("m")
    builder.add({"x": 1.0}, ClassPrediction("a", 0.9))
    builder.add({"x": "oops"}, ClassPrediction("a", 0.9))
    builder.add({"x": float("nan")}, ClassPrediction("a", 0.9))
    x = builder.build().features["x"]
    assert x["invalid"] == 2 and x["n"] == 1


def test_numeric_reference_handles_discrete_values() -> None:
    ref = numeric_reference([1, 1, 1, 1, 2, 2, 3], bins=4)
    assert ref["edges"] == sorted(set(ref["edges"]))
    assert sum(ref["counts"]) == 7


def test_categorical_reference_good_turing_unseen() -> None:
    ref = categorical_reference({"a": 10, "b": 1, "c": 1}, top_k=1, max_known=2)
    # "b" is a singleton; "c" did not fit in known.
    assert ref["known"] == ["a", "b"] and ref["unseen"] == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"format": "vigil.reference/2"},
        {"format": "vigil.reference/1"},
        {
            "format": "vigil.reference/1",
            "model_id": "m",
            "model_version": "v",
            "created_at": "2024-01-01T00:00:00",
            "events": 1,
            "features": {},
        },
        {
            "format": "vigil.reference/1",
            "model_id": "m",
            "model_version": "v",
            "created_at": "2024-01-01T00:00:00+00:00",
            "events": 1,
            "features": {"x": {"type": "text"}},
        },
    ],
)
def test_malformed_profiles_are_refused(bad: dict) -> None:
    with pytest.raises(SnapshotError):
        ReferenceProfile.from_dict(bad)
