"""Shared helpers for the deploy tests: paths, the real Prometheus tools, and
the metric names of the public contract (SPEC section 7).

The end-to-end test (test_prometheus_e2e.py) uses :func:`render_local_prometheus_config`,
:func:`dashboard_queries`, :func:`rules_with_short_for` and the ``prometheus_server``
fixture to run a real Prometheus against a worker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
LOCAL_TEMPLATE = PROMETHEUS_DIR / "local.yml.template"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))

# SPEC section 7, name -> type. Copied, not parsed: the contract lives outside
# the repository; a change there is a deliberate change here.
SPEC_METRICS: dict[str, str] = {
    "vigil_events_total": "counter",
    "vigil_dead_letters_total": "counter",
    "vigil_escalations_total": "counter",
    "vigil_escalations_suppressed_total": "counter",
    "vigil_alerts_total": "counter",
    "vigil_labels_total": "counter",
    "vigil_drift_active": "gauge",
    "vigil_drift_statistic": "gauge",
    "vigil_calibration_ece": "gauge",
    "vigil_brier_score": "gauge",
    "vigil_accuracy": "gauge",
    "vigil_estimated_accuracy": "gauge",
    "vigil_autoaccept_error": "gauge",
    "vigil_autoaccept_error_upper": "gauge",
    "vigil_reviewer_gold_accuracy": "gauge",
    "vigil_reviewer_agreement": "gauge",
    "vigil_escalation_threshold": "gauge",
    "vigil_reliability_bin_accuracy": "gauge",
    "vigil_reliability_bin_confidence": "gauge",
    "vigil_consumer_lag": "gauge",
    "vigil_prediction_confidence": "histogram",
    "vigil_event_lag_seconds": "histogram",
    "vigil_label_delay_seconds": "histogram",
    "vigil_batch_seconds": "histogram",
}
# Exported by the worker (streams/processing/metrics.py) but not yet listed in SPEC
# section 7; remove from here once the contract names it.
PENDING_SPEC_METRICS: dict[str, str] = {
    "vigil_escalation_budget_per_minute": "gauge",
    # Reviewer quality (issue 15): SPEC section 7 names only the two above.
    "vigil_reviewer_gold_answers_total": "counter",
    "vigil_reviewer_gold_accuracy_lower": "gauge",
    "vigil_reviewer_gold_accuracy_upper": "gauge",
    "vigil_reviewer_flagged": "gauge",
    "vigil_reviewer_adjudicated_agreement": "gauge",
    "vigil_reviewer_estimated_accuracy": "gauge",
    "vigil_reviewer_labels_total": "counter",
    "vigil_reviewer_time_to_label_seconds": "gauge",
    "vigil_reviewer_agreement_low": "gauge",
    "vigil_adjudications_total": "counter",
    # Multivariate drift, outliers and drift impact (issue 16).
    "vigil_drift_threshold": "gauge",
    "vigil_drift_impact": "gauge",
    "vigil_outlier_escalations_total": "counter",
    "vigil_adjudication_pending": "gauge",
    # Classwise calibration and regression quality (issue 16): SPEC section 7 has none.
    "vigil_classwise_ece": "gauge",
    "vigil_multiclass_brier": "gauge",
    "vigil_regression_mae": "gauge",
    "vigil_regression_rmse": "gauge",
    "vigil_regression_bias": "gauge",
    "vigil_interval_coverage": "gauge",
    "vigil_interval_coverage_nominal": "gauge",
    "vigil_interval_coverage_floor": "gauge",
    # Segments (issue 16): SPEC section 7 says "segment series as their issues define".
    "vigil_segment_events_total": "counter",
    "vigil_segment_escalations_total": "counter",
    "vigil_segment_labels_total": "counter",
    "vigil_segment_accuracy": "gauge",
    # Model versions (issue 16): "version series as their issues define".
    "vigil_version_events_total": "counter",
    "vigil_version_escalations_total": "counter",
    "vigil_version_accuracy": "gauge",
    "vigil_version_estimated_accuracy": "gauge",
    "vigil_version_confidence": "histogram",
}
# SPEC section 7 series that the review bridge exports (streams/review/bridge_metrics.py,
# job vigil-review) rather than the workers.
BRIDGE_METRICS: dict[str, str] = {
    "vigil_review_backlog": "gauge",
}
# The worker process's own series (streams/processing/runtime_metrics.py): prometheus_client's
# process and GC collectors, and the collector's pauses. Not in SPEC section 7.
RUNTIME_METRICS: dict[str, str] = {
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds_total": "counter",
    "python_gc_collections_total": "counter",
    "vigil_gc_pause_seconds": "histogram",
}
# Series that Prometheus itself attaches to every scrape target.
PROMETHEUS_METRICS = {"up"}

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def recorded_names() -> set[str]:
    """Names produced by the recording rules in deploy/prometheus/rules."""
    return {
        rule["record"]
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def known_metric(name: str, recorded: set[str]) -> bool:
    """True if ``name`` is a series a query may read: contract, recorded or ``up``."""
    exported = SPEC_METRICS | PENDING_SPEC_METRICS | BRIDGE_METRICS | RUNTIME_METRICS
    if name in exported or name in recorded or name in PROMETHEUS_METRICS:
        return True
    for suffix in _HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and exported.get(base) == "histogram":
            return True
    return False


# --------------------------------------------------------------- PromQL names

_QUOTED = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_GRAFANA_VAR = re.compile(r"\$\{?[A-Za-z_]\w*\}?")
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_NOT_METRICS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan", "Inf", "NaN",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (selectors, not functions or labels).

    >>> sorted(metric_names('sum by (le) (rate(x_bucket{m="$model"}[$__rate_interval])) / y'))
    ['x_bucket', 'y']
    """
    text = _QUOTED.sub('""', expr)
    text = _GRAFANA_VAR.sub("", text)
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _GROUPING.sub("", text)
    return {m for m in _IDENT.findall(text) if m not in _NOT_METRICS}


GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${model}": "example",
    "$model": "example",
    "${reviewer}": ".*",
    "$reviewer": ".*",
    "${segment}": ".*",
    "$segment": ".*",
}


def as_promql(expr: str, substitutions: dict[str, str] | None = None) -> str:
    """A Grafana query with its variables replaced by plausible values.

    ``substitutions`` overrides entries of :data:`GRAFANA_SUBSTITUTIONS` (e.g. a real model).
    """
    subs = GRAFANA_SUBSTITUTIONS | (substitutions or {})
    # Longest first: "${model}" before "$model", "$__rate_interval" before "$__range".
    for var in sorted(subs, key=len, reverse=True):
        expr = expr.replace(var, subs[var])
    if "$" in expr:
        raise ValueError(f"unknown Grafana variable in {expr!r}")
    return expr


def dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every query of a dashboard, rows' children included."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    out: list[tuple[str, str]] = []
    for top in dashboard["panels"]:
        for panel in [top, *top.get("panels", [])]:
            out.extend((panel["title"], t["expr"]) for t in panel.get("targets", []))
    return out


def rule_exprs() -> list[tuple[str, str]]:
    """``(record or alert name, expr)`` of every rule in deploy/prometheus/rules."""
    return [
        (rule.get("record") or rule["alert"], rule["expr"])
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def rules_with_short_for(dest: Path, for_: str = "3s", interval: str = "1s") -> Path:
    """A copy of deploy/prometheus/rules in ``dest`` with every alert's ``for:`` set to
    ``for_`` and every group ``interval:`` to ``interval``, so that an end-to-end test
    sees pending alerts turn firing in seconds. Expressions, labels and annotations are
    unchanged; the real durations are covered by the promtool unit tests."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in RULE_FILES:
        doc = load_yaml(path)
        for group in doc["groups"]:
            if "interval" in group:
                group["interval"] = interval
            for rule in group["rules"]:
                if "alert" in rule and "for" in rule:
                    rule["for"] = for_
        (dest / path.name).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return dest


# --------------------------------------------------------------- tools


def require_tool(name: str, package: str, *, install: str | None = None) -> str:
    """Path of ``name``; skip without it, but fail in CI (CI must run these tests).

    ``install`` says how to get it where it is not a Debian package ``package``.
    """
    path = shutil.which(name)
    if path:
        return path
    how = install or f"Debian/Ubuntu: apt-get install {package}"
    message = f"{name} not found on PATH ({how})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so this is a failure, not a skip")
    pytest.skip(message)


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_tool("amtool", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def prometheus_server() -> str:
    """Path of the real ``prometheus`` binary, for end-to-end tests."""
    return require_tool("prometheus", "prometheus")


def run_tool(args: Sequence[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def promql_rule_file(path: Path, exprs: Iterable[str]) -> Path:
    """Write each expression as a recording rule, so ``promtool check rules`` parses it."""
    rules = [{"record": f"check:expr_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "parse", "rules": rules}]}))
    return path


def render_local_prometheus_config(
    metrics_port: int, rules_dir: Path = RULES_DIR, review_metrics_port: int | None = None
) -> str:
    """deploy/prometheus/local.yml.template for a worker on 127.0.0.1:``metrics_port`` and,
    if ``review_metrics_port`` is given, a review bridge on 127.0.0.1:``review_metrics_port``."""
    review = "" if review_metrics_port is None else f'"127.0.0.1:{review_metrics_port}"'
    return LOCAL_TEMPLATE.read_text(encoding="utf-8").format(
        metrics_port=metrics_port, rules_dir=Path(rules_dir).resolve(), review_targets=review
    )
