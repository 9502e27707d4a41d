from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr, ValidationError

from streams.cli.config import check_config_file
from streams.cli.main import main
from streams.config import (
    DriftSettings,
    FeatureSpec,
    KafkaSettings,
    WorkerSettings,
    load_settings,
    settings_from_dict,
)
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


FOUR_MISTAKES = """\
worker:
  batch_size: 0
defaults:
  drift: {windw: 100}
  escalation: {policy: magic}
models:
  fraud:
    calibration: {bins: many}
"""


def test_config_check_lists_every_error_with_its_key_path(tmp_path: Path) -> None:
    f = tmp_path / "four.yaml"
    f.write_text(FOUR_MISTAKES)
    ok, lines = check_config_file(f)
    assert not ok
    assert lines[0] == f"{f}: invalid"
    assert lines[1:] == [
        "  - worker.batch_size must be an integer in [1, 100000]; got 0",
        "  - defaults.drift.windw: unknown key; did you mean 'window'?",
        "  - defaults.escalation.policy must be one of threshold, conformal; got 'magic'",
        "  - models.fraud.calibration.bins must be an integer in [2, 100]; got 'many'",
    ]
    # The worker refuses the same file with all four in one message.
    with pytest.raises(ConfigError) as info:
        load_settings(f, env={})
    assert str(info.value).startswith("4 problems:")
    assert "models.fraud.calibration.bins" in str(info.value)


def test_a_mistake_in_defaults_is_reported_once_not_per_model() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(
            {"defaults": {"labels": {"max_pendng": 5}}, "models": {"a": {}, "b": {}}}
        )
    assert str(info.value) == "defaults.labels.max_pendng: unknown key; did you mean 'max_pending'?"


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"topics": {"zzz": 1}})
    message = str(info.value)
    assert message.startswith("topics.zzz: unknown key; expected one of inference, labels")
    assert "did you mean" not in message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"worker": {"metrics_port": 70000}},
            "worker.metrics_port must be an integer in [0, 65535]; got 70000",
        ),
        (
            {"worker": {"batch_within_s": -1}},
            "worker.batch_within_s must be a number in [0, 10]; got -1",
        ),
        ({"escalation": 1}, "escalation: unknown key; did you mean 'defaults.escalation'?"),
        (
            {"defaults": {"escalation": {"budget_per_minute": 0}}},
            "defaults.escalation.budget_per_minute must be a number ≥ 0.1 or null; got 0",
        ),
        (
            {"defaults": {"drift": {"sensitivity": float("nan")}}},
            "defaults.drift.sensitivity must be a number in [100, 1000000000000]; got nan",
        ),
        (
            {"worker": {"allow_unknown_models": "no"}},
            "worker.allow_unknown_models must be true or false; got 'no'",
        ),
        (
            {"worker": {"max_models": True}},
            "worker.max_models must be an integer in [1, 100000]; got True",
        ),
        ({"models": {"fraud": 3}}, "models.fraud must be a mapping; got 3"),
    ],
)
def test_bounds_errors_name_key_rule_and_value(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(raw)
    assert str(info.value).startswith(message)


def test_env_overrides_a_nested_key_of_one_model(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("models:\n  fraud:\n    escalation: {min_confidence: 0.8}\n")
    s = load_settings(
        f,
        env={
            "VIGIL_MODELS__FRAUD__DRIFT__WINDOW": "100",
            "VIGIL_DEFAULTS__REDACT": "[email]",
            "VIGIL_TOPICS__INFERENCE": "123",  # a topic name stays text
        },
    )
    fraud = s.for_model("fraud")
    assert (fraud.drift.window, fraud.drift.step) == (100, 50)
    assert fraud.escalation.min_confidence == 0.8  # the file's value, not replaced
    assert fraud.redacted == frozenset({"email"})  # the defaults' redact reaches the model
    assert s.topics.inference == "123"
    with pytest.raises(ConfigError, match=r"worker\.batch_size must be an integer .* got 'many'"):
        load_settings(None, env={"VIGIL_WORKER__BATCH_SIZE": "many"})


def test_settings_from_dict_ignores_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_WORKER__BATCH_SIZE", "7")
    assert settings_from_dict({}).worker.batch_size == 500
    assert load_settings(None, env={}).worker.batch_size == 500
    assert load_settings().worker.batch_size == 7


def test_secret_not_in_repr_str_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-value-42"
    s = load_settings(
        env={
            "VIGIL_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "VIGIL_KAFKA_SASL_USERNAME": "svc",
            "VIGIL_KAFKA_SASL_PASSWORD": secret,
        }
    )
    logger = logging.getLogger("vigil-test")
    with caplog.at_level(logging.INFO, logger="vigil-test"):
        logger.info("settings %s / %r / %s", s, s, s.kafka)
    assert "svc" in caplog.text  # the record was written
    assert secret not in caplog.text
    assert secret not in repr(s.model_dump())
    # A password of the wrong type is refused without showing it.
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"kafka": {"sasl_password": 987654321}})
    assert "987654321" not in str(info.value)
    assert "kafka.sasl_password must be a string" in str(info.value)


def test_print_defaults_round_trips_to_the_default_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "check", "--print-defaults"]) == 0
    printed = capsys.readouterr().out
    assert settings_from_dict(yaml.safe_load(printed)) == settings_from_dict({})
    lines = printed.splitlines()
    batch = next(line for line in lines if line.strip().startswith("batch_size:"))
    assert batch == ("  batch_size: 500  # an integer in [1, 100000]; messages per consumed batch")
    password = next(line for line in lines if "sasl_password:" in line)
    assert "env: VIGIL_KAFKA_SASL_PASSWORD" in password
    # Every declared key appears: one line per setting of every section.
    keys = {line.split(":")[0].strip().lstrip("#").strip() for line in lines}
    for section in (KafkaSettings, WorkerSettings, DriftSettings, FeatureSpec):
        assert set(section.model_fields) <= keys, section.__name__
    # step follows window when not set; the printed file keeps it that way.
    edited = yaml.safe_load(printed)
    edited["defaults"]["drift"]["window"] = 100
    assert settings_from_dict(edited).defaults.drift.step == 50


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read config file"),
        ("a: [1\n", "not valid YAML at line 2"),
        ("- just\n- a list\n", "the top level must be a mapping"),
    ],
)
def test_config_check_unreadable_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, words: str
) -> None:
    f = tmp_path / "v.yaml"
    if content is not None:
        f.write_text(content)
    assert main(["config", "check", str(f)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert words in line and "Traceback" not in captured.err


def test_config_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("worker: {batch_size: 10}\n")
    assert main(["config", "check", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(FOUR_MISTAKES)
    assert main(["config", "check", str(bad)]) == 1
    assert capsys.readouterr().out.count("\n  - ") == 4


def test_detector_settings_are_checked_by_building_the_monitors(tmp_path: Path) -> None:
    # Valid for the config layer (a path is a string); refused when the monitors are built
    # as the worker builds them, and listed like the other problems.
    f = tmp_path / "v.yaml"
    f.write_text("defaults:\n  features: {a: {type: numeric}}\n  reference: /nonexistent.json\n")
    ok, lines = check_config_file(f)
    assert not ok
    assert lines[1].startswith("  - defaults: reference profile '/nonexistent.json'")


def test_feature_and_model_names_are_text_and_null_keeps_the_default() -> None:
    s = settings_from_dict(
        {
            "worker": None,
            "defaults": {"features": {1: {"min": 0}, "b": None}, "drift": {"step": None}},
            "models": {2024: None},
        }
    )
    assert s.defaults.features["1"].min == 0.0
    assert s.defaults.features["b"].type == "numeric"
    assert s.defaults.drift.step == 125
    assert s.for_model("2024") == s.defaults
    assert s.worker.batch_size == 500


@pytest.mark.parametrize("kind", [list, tuple, frozenset])
def test_a_models_redact_list_adds_to_the_defaults(kind: type) -> None:
    s = settings_from_dict(
        {
            "defaults": {"redact": kind(["email"])},
            "models": {"m": {"redact": kind(["ssn"]), "features": {"card": {"redact": True}}}},
        }
    )
    assert s.for_model("m").redacted == frozenset({"email", "ssn", "card"})
    assert s.for_model("other").redacted == frozenset({"email"})


def test_settings_are_frozen() -> None:
    s = settings_from_dict({})
    with pytest.raises(ValidationError):
        s.worker.batch_size = 3  # type: ignore[misc]
