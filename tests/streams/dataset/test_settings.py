"""The ``dataset`` settings and the reviewed topic (streams/config/settings.py,
streams/kafka/topics.py)."""

from __future__ import annotations

import pytest

from streams.config import load_settings, settings_from_dict
from streams.errors import ConfigError
from streams.kafka.topics import topic_specs


def test_defaults_and_environment() -> None:
    s = load_settings(None, env={})
    assert s.topics.reviewed == "vigil.reviewed"
    assert (s.dataset.table, s.dataset.group_id, s.dataset.batch_size) == (
        "vigil-dataset",
        "vigil-dataset",
        20_000,
    )
    s = load_settings(
        None,
        env={
            "VIGIL_DATASET_TABLE": "s3://bucket/reviewed",
            "VIGIL_DATASET__BATCH_WITHIN_S": "0.5",
            "VIGIL_TOPICS__REVIEWED": "other.reviewed",
        },
    )
    assert s.dataset.table == "s3://bucket/reviewed"
    assert s.dataset.batch_within_s == 0.5
    assert s.topics.reviewed == "other.reviewed"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"batch_size": 0}, "dataset.batch_size"),
        ({"table": ""}, "dataset.table"),
        ({"tabel": "x"}, "dataset.tabel"),
    ],
)
def test_bad_values_name_their_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        settings_from_dict({"dataset": section})


def test_topics_create_makes_the_reviewed_topic() -> None:
    s = settings_from_dict({"topics": {"reviewed": "r", "partitions": 6}})
    assert topic_specs(s)["r"]["partitions"] == 6
