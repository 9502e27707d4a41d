"""A reviewed record checked and flattened (streams/dataset/rows.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from streams.dataset.rows import COLUMNS, ROW_SCHEMA, decode_reviewed, rows_to_table
from streams.errors import InvalidEventError
from tests.streams.dataset.reviewed import reviewed_record


def _row(record: Any) -> dict[str, Any]:
    return decode_reviewed(record, topic="t", partition=2, offset=41)


def test_a_classification_record_becomes_a_row() -> None:
    record = reviewed_record(1, model="fraud")
    row = _row(record)
    assert set(row) == set(COLUMNS)
    assert row["model_id"] == "fraud"
    assert row["final_label"] == "bad" and row["final_value"] is None
    assert row["final_method"] == "weighted"
    assert row["event_ts"] == datetime(2026, 9, 22, 9, tzinfo=UTC)
    assert row["adjudicated_at"] == datetime.fromtimestamp(1_790_000_201, UTC)
    assert row["prediction_label"] == "ok"
    assert row["n_labels"] == 2
    assert orjson.loads(row["labels"]) == record["labels"]
    assert orjson.loads(row["features"]) == record["features"]
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("t", 2, 41)


def test_a_regression_record_keeps_its_value() -> None:
    row = _row(reviewed_record(2, model="price"))
    assert row["final_value"] == 11.0 and row["final_label"] is None
    assert row["prediction_value"] is not None and row["prediction_label"] is None


def test_features_are_canonical_json_whatever_the_key_order() -> None:
    a = reviewed_record(3)
    b = dict(a, features=dict(reversed(list(a["features"].items()))))
    assert _row(a)["features"] == _row(b)["features"]


def test_optional_fields_take_their_defaults() -> None:
    record = reviewed_record(4)
    for key in ("model_version", "escalation_id", "features", "segment", "policy", "reasons"):
        del record[key]
    row = _row(record)
    assert row["model_version"] == "unknown"
    assert row["escalation_id"] is None
    assert row["features"] == "{}" and row["reasons"] == "[]"
    assert row["policy_name"] is None


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"model_id": "bad model"}, "model_id"),
        ({"reviewed_id": ""}, "reviewed_id"),
        ({"event_ts": "2026-09-22T09:00:00"}, "event_ts"),
        ({"event_ts": True}, "event_ts"),
        ({"adjudicated_at": float("nan")}, "adjudicated_at"),
        ({"inclusion_probability": 0}, "inclusion_probability"),
        ({"inclusion_probability": 1.5}, "inclusion_probability"),
        ({"labels": []}, "labels"),
        ({"labels": [{"reviewer": "ann"}]}, "labels[0]"),
        ({"final": {"label": "x", "value": 1, "method": "single"}}, "final"),
        ({"final": {"label": "x", "method": "coin"}}, "final.method"),
        ({"final": {"label": "x", "method": "single", "agreement": 2}}, "final.agreement"),
        ({"prediction": "ok"}, "prediction"),
        ({"features": [1, 2]}, "features"),
    ],
)
def test_a_record_that_breaks_the_contract_is_refused_with_the_field(
    change: dict[str, Any], names: str
) -> None:
    record = {**reviewed_record(5, model="fraud"), **change}
    with pytest.raises(InvalidEventError, match=names.replace("[", r"\[")) as info:
        _row(record)
    assert info.value.reason == "schema"


def test_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="object"):
        _row([1, 2])


def test_rows_become_one_arrow_table_of_the_row_schema() -> None:
    rows = [_row(reviewed_record(i)) for i in range(6)]
    table = rows_to_table(rows)
    assert table.schema == ROW_SCHEMA
    assert table.num_rows == 6
    assert table["model_id"].to_pylist() == [r["model_id"] for r in rows]
