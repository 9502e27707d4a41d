from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.cli.config import check_config_file
from streams.config import load_settings, settings_from_dict
from streams.errors import ConfigError


def test_defaults_and_model_override_merge() -> None:
    s = settings_from_dict(
        {
            "defaults": {"escalation": {"min_confidence": 0.7, "min_margin": 0.2}},
            "models": {"fraud": {"escalation": {"min_confidence": 0.9}}},
        }
    )
    assert s.for_model("fraud").escalation.min_confidence == 0.9
    assert s.for_model("fraud").escalation.min_margin == 0.2  # inherited from defaults
    assert s.for_model("other").escalation.min_confidence == 0.7


def test_env_wins_over_file(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("kafka: {bootstrap: 'file:9092'}\nworker: {metrics_port: 1234}\n")
    s = load_settings(
        f,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": "env:9092",
            "VIGIL_WORKER__MAX_MODELS": "7",
            "VIGIL_METRICS_PORT": "4321",
        },
    )
    assert s.kafka.bootstrap == "env:9092"
    assert s.worker.max_models == 7
    assert s.worker.metrics_port == 4321


def test_secret_never_shows() -> None:
    s = load_settings(
        env={
            "VIGIL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "VIGIL_KAFKA_SASL_USERNAME": "svc",
            "VIGIL_KAFKA_SASL_PASSWORD": "p4ssw0rd-123",
        }
    )
    assert "p4ssw0rd" not in repr(s)
    assert "p4ssw0rd" not in str(s.kafka)
    assert isinstance(s.kafka.sasl_password, SecretStr)
    assert s.kafka.confluent_config()["sasl.password"] == "p4ssw0rd-123"


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"needs kafka\.sasl_username"):
        settings_from_dict({"kafka": {"security_protocol": "SASL_SSL"}})


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"worker": {"max_models": 0}}, "worker.max_models must be an integer"),
        ({"worker": {"metrics_prot": 1}}, "worker.metrics_prot: unknown key"),
        ({"defaults": {"escalation": {"policy": "magic"}}}, "threshold, conformal"),
        ({"models": {"m": {"escalation": {"min_confidence": 2}}}}, "models.m.escalation"),
        ({"defaults": {"features": {"a": {"type": "text"}}}}, "numeric, categorical"),
        ({"defaults": {"features": {"a": {"min": 3, "max": 1}}}}, "min must be ≤ max"),
        ({"topics": {"partitions": "four"}}, "topics.partitions"),
    ],
)
def test_errors_name_the_key(raw: dict, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(raw)
    assert words in str(info.value)


def test_config_check_explains(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("models:\n  fraud:\n    escalation: {min_confidence: 0.8}\n")
    ok, lines = check_config_file(good)
    assert ok and "fraud" in "\n".join(lines)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  fraud:\n    escalation: {min_confidence: 1.8}\n")
    ok, lines = check_config_file(bad)
    assert not ok
    assert "models.fraud.escalation.min_confidence" in "\n".join(lines)
    ok, lines = check_config_file(tmp_path / "missing.yaml")
    assert not ok and "cannot read" in lines[1]


def test_drift_step_defaults_to_half_the_window() -> None:
    assert settings_from_dict({}).defaults.drift.step == 125
    s = settings_from_dict({"defaults": {"drift": {"window": 100}}})
    assert (s.defaults.drift.window, s.defaults.drift.step) == (100, 50)
    s = settings_from_dict({"defaults": {"drift": {"window": 90, "step": 30}}})
    assert s.defaults.drift.step == 30
    with pytest.raises(ConfigError, match="multiple"):
        settings_from_dict({"defaults": {"drift": {"window": 100, "step": 30}}})
