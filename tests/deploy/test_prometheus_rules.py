"""Prometheus config, rules and their unit tests, checked by the real promtool.

Structure checks run everywhere; the promtool ones are marked ``prometheus``.
Each promtool check is paired with a deliberately broken copy that promtool
must reject, so a check that cannot fail would be noticed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import (
    LOCAL_TEMPLATE,
    PROMETHEUS_DIR,
    RULE_FILES,
    RULE_TESTS,
    RULES_DIR,
    known_metric,
    load_yaml,
    metric_names,
    recorded_names,
    render_local_prometheus_config,
    run_tool,
)

ALERTS_FILE = RULES_DIR / "vigil-alerts.yml"
EXPECTED_ALERTS = {
    "VigilModelInDrift",
    "VigilCalibrationDegraded",
    "VigilEstimatedAccuracyDrop",
    "VigilEscalationsSuppressed",
    "VigilDeadLetterRateHigh",
    "VigilConsumerLagHigh",
    "VigilWorkerDown",
    "VigilReviewBridgeDown",
    "VigilReviewBacklogHigh",
    "VigilReviewBacklogGrowing",
    "VigilReviewerBelowGoldBar",
    "VigilReviewAgreementLow",
    "VigilIntervalCoverageLow",
}
SEVERITIES = {"critical", "warning", "info"}


def all_rules() -> list[dict]:
    return [rule for path in RULE_FILES for g in load_yaml(path)["groups"] for rule in g["rules"]]


def alert_rules() -> dict[str, dict]:
    return {r["alert"]: r for r in all_rules() if "alert" in r}


def copy_rules_and_tests(tmp_path: Path) -> tuple[Path, Path]:
    """deploy/prometheus/{rules,tests} under tmp_path, keeping the ../rules references."""
    rules = shutil.copytree(RULES_DIR, tmp_path / "rules")
    tests = shutil.copytree(PROMETHEUS_DIR / "tests", tmp_path / "tests")
    return rules, tests


# ------------------------------------------------------------------ structure


def test_every_expected_alert_exists_with_for_severity_and_annotations() -> None:
    alerts = alert_rules()
    assert set(alerts) == EXPECTED_ALERTS
    for name, rule in alerts.items():
        assert rule.get("for"), f"{name}: needs a for: duration to ride out blips"
        assert rule["labels"]["severity"] in SEVERITIES, name
        for key in ("summary", "description", "runbook"):
            assert rule["annotations"].get(key, "").strip(), f"{name}: missing {key}"


def test_worker_down_alert_watches_the_vigil_job() -> None:
    assert alert_rules()["VigilWorkerDown"]["expr"].strip() == 'up{job="vigil"} == 0'


def test_rules_read_only_contract_metrics_or_recorded_series() -> None:
    recorded = recorded_names()
    for rule in all_rules():
        unknown = {n for n in metric_names(rule["expr"]) if not known_metric(n, recorded)}
        assert not unknown, f"{rule.get('record') or rule.get('alert')}: unknown {unknown}"


def test_recording_rule_names_follow_level_metric_operations() -> None:
    for name in recorded_names():
        assert name.count(":") == 2, name


def test_each_alert_has_firing_and_not_firing_unit_tests() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing >= EXPECTED_ALERTS, f"never shown firing: {EXPECTED_ALERTS - firing}"
    assert quiet >= EXPECTED_ALERTS, f"never shown quiet: {EXPECTED_ALERTS - quiet}"


def test_compose_config_scrapes_both_workers_and_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vigil"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == ["worker-1:9108", "worker-2:9108"]
    matched = {p for pattern in config["rule_files"] for p in PROMETHEUS_DIR.glob(pattern)}
    assert matched == set(RULE_FILES)
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]


def test_local_template_renders_a_one_target_config() -> None:
    config = yaml.safe_load(render_local_prometheus_config(19108, RULES_DIR))
    assert config["global"]["scrape_interval"] == "1s"
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs == {"vigil": ["127.0.0.1:19108"], "vigil-review": []}
    assert config["rule_files"] == [f"{RULES_DIR.resolve()}/*.yml"]


def test_local_template_scrapes_a_review_bridge_when_given() -> None:
    config = yaml.safe_load(render_local_prometheus_config(19108, RULES_DIR, 19112))
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs == {"vigil": ["127.0.0.1:19108"], "vigil-review": ["127.0.0.1:19112"]}


# ------------------------------------------------------------------ promtool


@pytest.mark.prometheus
def test_promtool_accepts_the_compose_config(promtool: str) -> None:
    result = run_tool([promtool, "check", "config", PROMETHEUS_DIR / "prometheus.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


@pytest.mark.prometheus
@pytest.mark.parametrize("review_port", [None, 19112])
def test_promtool_accepts_the_rendered_local_config(
    promtool: str, tmp_path: Path, review_port: int | None
) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(render_local_prometheus_config(19108, review_metrics_port=review_port))
    result = run_tool([promtool, "check", "config", path])
    assert result.returncode == 0, result.stdout + result.stderr
    assert LOCAL_TEMPLATE.exists()


@pytest.mark.prometheus
def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = run_tool([promtool, "check", "rules", *RULE_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    rules, _ = copy_rules_and_tests(tmp_path)
    broken = rules / ALERTS_FILE.name
    text = broken.read_text()
    broken.write_text(text.replace('up{job="vigil"} == 0', 'up{job="vigil" == 0', 1))
    assert broken.read_text() != text
    result = run_tool([promtool, "check", "rules", broken])
    assert result.returncode != 0, result.stdout


@pytest.mark.prometheus
def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = run_tool([promtool, "test", "rules", *RULE_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


@pytest.mark.prometheus
@pytest.mark.parametrize(
    ("old", "new"),
    [
        # A threshold moved: the ECE alert would fire for the "churn" case.
        ("(vigil_calibration_ece) > 0.1", "(vigil_calibration_ece) > 0"),
        # A for: shortened: the drift alert would fire while still pending.
        ("for: 5m", "for: 1m"),
        # A stale partition copy from the previous owner counted twice.
        ("(max by (topic, partition) (", "(max by (topic, partition, instance) ("),
        # A model reported by two bridge targets (a restart) counted twice.
        (
            "max by (model) (vigil_review_backlog) > 1000",
            "sum by (model) (vigil_review_backlog) > 1000",
        ),
    ],
)
def test_promtool_unit_tests_catch_a_changed_alert(
    promtool: str, tmp_path: Path, old: str, new: str
) -> None:
    rules, tests = copy_rules_and_tests(tmp_path)
    changed = rules / ALERTS_FILE.name
    text = changed.read_text()
    assert old in text
    changed.write_text(text.replace(old, new, 1))
    result = run_tool([promtool, "test", "rules", *sorted(tests.glob("*.yml"))])
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout + result.stderr
