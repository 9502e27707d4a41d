"""Grafana dashboards and provisioning: structure, metric names, PromQL syntax.

Every query must read only series the worker exports (SPEC section 7), the
recording rules, or ``up``; promtool parses every query after Grafana's
variables are replaced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from streams.config.settings import ReviewSettings
from tests.deploy.conftest import (
    BRIDGE_METRICS,
    DASHBOARDS,
    DEPLOY,
    PENDING_SPEC_METRICS,
    REPO,
    SPEC_METRICS,
    as_promql,
    known_metric,
    load_yaml,
    metric_names,
    promql_rule_file,
    recorded_names,
    run_tool,
)

GRAFANA = DEPLOY / "grafana"
DATASOURCE_UID = "prometheus"
#: uid of every dashboard; each ships as deploy/grafana/dashboards/<uid>.json.
UIDS = {"vigil-fleet", "vigil-model", "vigil-review-quality"}
_LABEL_VALUES = re.compile(r"^label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)$")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """All panels, rows' children included; rows themselves left out."""
    out = []
    for p in dashboard["panels"]:
        if p["type"] == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


def by_name(name: str) -> dict[str, Any]:
    return load(GRAFANA / "dashboards" / name)


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_every_dashboard_ships() -> None:
    # DASHBOARDS globs the directory, so every test that takes ``dashboard`` covers each.
    assert [p.name for p in DASHBOARDS] == [f"{uid}.json" for uid in sorted(UIDS)]


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] in UIDS
    assert dashboard["title"] == dashboard["uid"].replace("-", " ")
    assert 36 <= dashboard["schemaVersion"] <= 41
    top = dashboard["panels"]
    ids = [p["id"] for p in top] + [c["id"] for p in top for c in p.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboards_link_to_each_other(dashboard: dict[str, Any]) -> None:
    urls = {link["url"] for link in dashboard["links"]}
    assert urls == {f"/d/{uid}/{uid}" for uid in UIDS - {dashboard["uid"]}}


def test_every_panel_queries_prometheus(dashboard: dict[str, Any]) -> None:
    for p in panels(dashboard):
        assert p["targets"], f"panel {p['title']!r} has no targets"
        assert p["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), f"panel {p['title']!r}: empty expr"
            assert t["datasource"]["uid"] == DATASOURCE_UID, p["title"]
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    boxes = [(p["title"], p["gridPos"]) for p in dashboard["panels"]]
    for title, g in boxes:
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, title
    for i, (a, ga) in enumerate(boxes):
        for b, gb in boxes[i + 1 :]:
            apart = (
                ga["x"] + ga["w"] <= gb["x"]
                or gb["x"] + gb["w"] <= ga["x"]
                or ga["y"] + ga["h"] <= gb["y"]
                or gb["y"] + gb["h"] <= ga["y"]
            )
            assert apart, f"{a!r} overlaps {b!r}"


def test_queries_read_only_known_metrics(dashboard: dict[str, Any]) -> None:
    recorded = recorded_names()
    for expr in exprs(dashboard):
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        unknown = {n for n in names if not known_metric(n, recorded)}
        assert not unknown, f"{expr!r} reads {unknown}, not in SPEC section 7 or the rules"


def test_metric_name_extraction_sees_unknown_names() -> None:
    # Guards the test above: a misspelt metric must be caught.
    names = metric_names('sum by (le) (rate(vigil_event_lag_secs_bucket{model="$model"}[5m]))')
    assert names == {"vigil_event_lag_secs_bucket"}
    assert not known_metric("vigil_event_lag_secs_bucket", recorded_names())
    assert known_metric("vigil_event_lag_seconds_bucket", set())
    assert not known_metric("vigil_events_total_bucket", set())


def test_contract_metrics_are_exported_by_the_worker() -> None:
    # The dashboards trust SPEC_METRICS; the worker must really export them.
    text = (REPO / "streams" / "processing" / "metrics.py").read_text(encoding="utf-8")
    for name in SPEC_METRICS | PENDING_SPEC_METRICS:
        # prometheus_client accepts a counter's name with or without _total.
        spellings = {f'"{name}"', f'"{name.removesuffix("_total")}"'}
        assert any(s in text for s in spellings), (
            f"{name} is not defined in streams/processing/metrics.py"
        )


def test_bridge_metrics_are_exported_by_the_review_bridge() -> None:
    text = (REPO / "streams" / "review" / "bridge_metrics.py").read_text(encoding="utf-8")
    for name in BRIDGE_METRICS:
        assert f'"{name}"' in text, f"{name} is not defined in streams/review/bridge_metrics.py"


@pytest.mark.prometheus
def test_every_query_parses(promtool: str, tmp_path: Path, dashboard: dict[str, Any]) -> None:
    queries = [as_promql(e) for e in exprs(dashboard)]
    path = promql_rule_file(tmp_path / f"{dashboard['uid']}.yml", queries)
    result = run_tool([promtool, "check", "rules", path])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


@pytest.mark.prometheus
def test_query_parse_check_rejects_bad_promql(promtool: str, tmp_path: Path) -> None:
    path = promql_rule_file(tmp_path / "bad.yml", ["sum(rate(vigil_events_total[5m])"])
    assert run_tool([promtool, "check", "rules", path]).returncode != 0


# ------------------------------------------------------------------ content


def test_fleet_dashboard_covers_the_fleet_view() -> None:
    text = "\n".join(exprs(by_name("vigil-fleet.json")))
    for needle in (
        "vigil_events",  # events/s
        "vigil_dead_letters",  # dead-letter rate by reason
        "vigil_escalations_per_minute",  # escalation rate ...
        "vigil_escalation_budget_per_minute",  # ... against budget
        "models_in_drift",
        "vigil_calibration_ece",
        "model:vigil_accuracy",
        "model:vigil_estimated_accuracy",
        "vigil_consumer_lag",
        "max by (model) (vigil_review_backlog)",  # from the review bridge
        "histogram_quantile(0.5, sum by (le) (rate(vigil_event_lag_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(vigil_event_lag_seconds_bucket",
    ):
        assert needle in text, needle


def variable(dashboard: dict[str, Any], name: str) -> tuple[dict[str, Any], tuple[str, str]]:
    """The dashboard's variable ``name`` and the (metric, label) its label_values query reads."""
    (var,) = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
    match = _LABEL_VALUES.match(query)
    assert match, query
    assert var["datasource"]["uid"] == DATASOURCE_UID
    metric, label = match.groups()
    return var, (metric, label)


def test_model_dashboard_has_a_model_variable_used_by_every_query() -> None:
    d = by_name("vigil-model.json")
    _var, source = variable(d, "model")
    assert source == ("vigil_events_total", "model")
    for expr in exprs(d):
        assert 'model="$model"' in expr, f"{expr!r} ignores the model variable"


def test_model_dashboard_panels() -> None:
    ps = {p["title"]: p for p in panels(by_name("vigil-model.json"))}

    def queries(title: str) -> str:
        return "\n".join(t["expr"] for t in ps[title]["targets"])

    assert "vigil_drift_statistic" in queries("Drift statistic by signal")
    assert "vigil_drift_active" in queries("Drift state by signal")
    assert "vigil_review_backlog" in queries("Review backlog (open tasks)")
    reliability = ps["Reliability diagram"]
    assert reliability["type"] == "barchart"
    assert {"vigil_reliability_bin_accuracy", "vigil_reliability_bin_confidence"} <= {
        n for t in reliability["targets"] for n in metric_names(t["expr"])
    }
    assert all(t.get("instant") and t["format"] == "table" for t in reliability["targets"])
    assert reliability["options"]["xField"] == "bin"
    heatmap = ps["Prediction confidence"]
    assert heatmap["type"] == "heatmap"
    (t,) = heatmap["targets"]
    assert "vigil_prediction_confidence_bucket" in t["expr"] and t["format"] == "heatmap"
    assert heatmap["options"]["calculate"] is False
    autoaccept = ps["Auto-accept error"]
    assert [metric_names(t["expr"]) for t in autoaccept["targets"]] == [
        {"vigil_autoaccept_error"},
        {"vigil_autoaccept_error_upper"},
    ]
    assert autoaccept["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert "autoaccept_error" in autoaccept["description"]  # where its alert signal shows
    delay = queries("Label delay p50 / p90 / p99")
    assert delay.count("vigil_label_delay_seconds_bucket") == 3


def test_review_quality_dashboard_variables() -> None:
    d = by_name("vigil-review-quality.json")
    reviewer, source = variable(d, "reviewer")
    assert source == ("vigil_reviewer_labels_total", "reviewer")
    # Several reviewers at once, "All" by default: queries match them with =~.
    assert reviewer["multi"] and reviewer["includeAll"] and reviewer["allValue"] == ".*"
    model, source = variable(d, "model")
    assert source == ("vigil_adjudications_total", "model")
    assert not model["multi"]
    for p in panels(d):
        for t in p["targets"]:
            names = metric_names(t["expr"])
            per_reviewer = any("reviewer" in n for n in names) and not any(
                n.startswith("vigil_reviewer_agreement") for n in names
            )
            if p["title"] == "Reviewers flagged":  # the whole team, whatever is selected
                assert "$" not in t["expr"]
            elif per_reviewer:
                assert '{reviewer=~"$reviewer"}' in t["expr"], (p["title"], t["expr"])
            else:
                assert 'model="$model"' in t["expr"], (p["title"], t["expr"])


def test_review_quality_dashboard_panels() -> None:
    ps = {p["title"]: p for p in panels(by_name("vigil-review-quality.json"))}

    def reads(title: str) -> list[set[str]]:
        return [metric_names(t["expr"]) for t in ps[title]["targets"]]

    def queries(title: str) -> str:
        return "\n".join(t["expr"] for t in ps[title]["targets"])

    gold = ps["Gold accuracy and 95% interval"]
    assert reads(gold["title"]) == [
        {"vigil_reviewer_gold_accuracy"},
        {"vigil_reviewer_gold_accuracy_lower"},
        {"vigil_reviewer_gold_accuracy_upper"},
    ]
    # One series per reviewer: where several workers score a reviewer (each on its own
    # models), the least favourable figures, the ones that flag the reviewer first.
    assert all(t["expr"].startswith("min by (reviewer) (") for t in gold["targets"])
    assert gold["fieldConfig"]["defaults"]["unit"] == "percentunit"
    # The bar drawn is review.min_gold_accuracy's default.
    (_, bar) = gold["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert bar["value"] == ReviewSettings.model_fields["min_gold_accuracy"].default
    assert reads("Reviewers flagged") == [{"vigil:reviewers_flagged:count"}]
    assert reads("Flagged by the gold check") == [{"vigil_reviewer_flagged"}]
    assert ps["Flagged by the gold check"]["type"] == "state-timeline"
    assert "max by (reviewer) (vigil_reviewer_flagged" in queries("Flagged by the gold check")
    assert reads("Agreement with the adjudicated label") == [
        {"vigil_reviewer_adjudicated_agreement"}
    ]
    assert reads("Labels per hour by reviewer") == [
        {"reviewer:vigil_reviewer_labels_per_hour:rate5m"}
    ]
    time_to_label = ps["Median time to label"]
    assert reads(time_to_label["title"]) == [{"vigil_reviewer_time_to_label_seconds"}]
    assert time_to_label["fieldConfig"]["defaults"]["unit"] == "s"
    assert "by (reviewer, outcome)" in queries("Gold answers per hour")
    assert reads("Gold answers per hour") == [{"vigil_reviewer_gold_answers_total"}]

    alpha = ps["Reviewer agreement (Krippendorff's alpha)"]
    assert reads(alpha["title"]) == [{"vigil_reviewer_agreement"}]
    (_, bar) = alpha["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert bar["value"] == ReviewSettings.model_fields["min_agreement"].default
    assert alpha["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    assert reads("Agreement below review.min_agreement") == [{"vigil_reviewer_agreement_low"}]
    assert "sum by (method) (rate(vigil_adjudications_total" in queries(
        "Adjudications per minute by method"
    )
    assert reads("Events waiting for more reviews") == [{"vigil_adjudication_pending"}]
    late_gold = queries("Late and gold labels per minute")
    assert 'outcome="late"' in late_gold and 'outcome="gold"' in late_gold

    scorecard = ps["Reviewer scorecard"]
    assert scorecard["type"] == "table"
    assert all(t.get("instant") and t["format"] == "table" for t in scorecard["targets"])
    assert all(
        "by (reviewer)" in t["expr"] or t["expr"].startswith("reviewer:")
        for t in scorecard["targets"]
    )
    renamed = scorecard["transformations"][-1]["options"]["renameByName"]
    assert set(renamed) == {f"Value #{t['refId']}" for t in scorecard["targets"]}


def test_review_quality_alerts_name_the_dashboard() -> None:
    title = by_name("vigil-review-quality.json")["title"]
    alerts = {
        r["alert"]: r
        for g in load_yaml(DEPLOY / "prometheus" / "rules" / "vigil-alerts.yml")["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    for name in ("VigilReviewerBelowGoldBar", "VigilReviewAgreementLow"):
        assert f'"{title}" dashboard' in alerts[name]["annotations"]["runbook"], name


# ------------------------------------------------------------------ provisioning


def test_datasource_provisioning_has_the_uid_the_dashboards_use() -> None:
    (ds,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert ds["uid"] == DATASOURCE_UID
    assert ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090"


def test_dashboard_provider_reads_the_directory_compose_mounts() -> None:
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "vigil.yml")["providers"]
    compose = load_yaml(REPO / "docker-compose.yml")
    mounts = dict(
        v.rsplit(":", 2)[:2] if v.endswith((":ro", ":rw")) else v.split(":", 1)
        for v in compose["services"]["grafana"]["volumes"]
    )
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
