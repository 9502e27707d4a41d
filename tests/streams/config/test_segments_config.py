"""``segments`` settings (issue 16): the shape, the shorthand and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli.config import check_config_file
from streams.config import settings_from_dict
from streams.errors import ConfigError


def test_a_list_is_short_for_keys_and_models_override_defaults() -> None:
    s = settings_from_dict(
        {
            "defaults": {"segments": ["region", "tenant"]},
            "models": {"fraud": {"segments": {"keys": ["region"], "features": ["amount"]}}},
        }
    )
    assert s.defaults.segments.keys == ["region", "tenant"]
    assert s.defaults.segments.top_k == 10 and s.defaults.segments.features == []
    fraud = s.for_model("fraud").segments
    assert fraud.keys == ["region"] and fraud.features == ["amount"]
    assert settings_from_dict({}).defaults.segments.keys == []  # off unless configured


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"segments": {"keys": ["a:b"]}}, "must not contain ':'"),
        ({"segments": ["region", "region"]}, "keys must be distinct"),
        ({"segments": {"keys": ["region"], "top_k": 0}}, "defaults.segments.top_k"),
        ({"segments": {"keys": [f"k{i}" for i in range(9)]}}, "defaults.segments.keys"),
        ({"segments": {"key": ["region"]}}, "defaults.segments.key: unknown key"),
    ],
)
def test_errors_name_the_key(raw: dict, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"defaults": raw})
    assert words in str(info.value)


def test_config_check_explains_a_bad_segment_setting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  fraud:\n    segments: {keys: [region], top_k: 500}\n")
    ok, lines = check_config_file(bad)
    assert not ok and "models.fraud.segments.top_k" in "\n".join(lines)
