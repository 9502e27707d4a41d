"""deploy/prometheus and deploy/grafana against a real Prometheus scraping a real worker.

A real ``vigil worker`` (real broker) gets synthetic traffic built to trip every alert:

============== ==================================================================
model          what the scenario does to it
============== ==================================================================
drifting       x0 shifts by 3 sd after the reference; truthful labels; a budget
               of 1 escalation a minute -> drift and suppression; in phase 2 a
               second version (v2) serves 30 % of its events -> version series; 2 % of its
               phase-2 events are absurd (x1 and x2 4.5 sd apart) -> outlier
               escalations; its multivariate signal is scored all along
steady         stationary, truthful labels: the negative control, never alerted
miscalibrated  every label contradicts the prediction -> ECE far above 0.1, and the
               error among auto-accepted items above its bar (autoaccept_error)
fading         confidences collapse towards 0.5 in phase 2 -> estimated accuracy
               falls below its baseline
reviewed       stationary; gold questions (half as many as its escalations), half of
               its escalations overlapped (2 reviews), labelled by synthetic reviewers
               read from the escalations topic: three always right, one (``careless``)
               always wrong -> the careless reviewer is flagged, agreement is low
regressor      a regression model with calibrated 90 % intervals whose errors triple
               in phase 2 -> interval coverage far below nominal (coverage signal)
(all)          5 % malformed events -> dead-letter ratio above 1 %
============== ==================================================================

and, at the end, the worker is stopped -> ``up == 0``.

The review backlog comes from a real review bridge process (``vigil review label-studio``,
scraped as job ``vigil-review``) and the session's real Label Studio: the bridge makes the
drifting model's escalations tasks in its project, then the test adds 600 tasks, then
600 more, which raises VigilReviewBacklogHigh (over 1000) and VigilReviewBacklogGrowing;
stopping the bridge at the end raises VigilReviewBridgeDown.

A real Prometheus (config rendered from deploy/prometheus/local.yml.template, 1 s
scrape and evaluation) loads a copy of the project's rules in which every alert's
``for:`` is 3 s and the 1-minute group interval is 1 s (:func:`rules_with_short_for`);
nothing else is changed, and the real durations are covered by the promtool unit
tests in test_prometheus_rules.py. Through the HTTP API the test asserts that

- the worker target is up and every rule is loaded and evaluates without error;
- every query of every dashboard panel (Grafana variables replaced by the
  ``drifting`` model - ``reviewed`` on the review-quality dashboard - every reviewer
  and short intervals) and every rule expression returns data
  at some point of the scenario - for an alert rule that means its condition held;
- each alert fires for the model (or instance) the scenario aimed it at, and none
  fires for the ``steady`` model; suppression is reported only for the budgeted
  model, miscalibration only for the mislabelled one, a reviewer below the gold bar
  only for the careless one, low agreement only for the reviewed model.

One alert condition is not created, see :data:`NOT_CREATED`: VigilConsumerLagHigh.

The Prometheus runner is the one ``vigil demo`` uses (:class:`streams.dev.demo.LocalPrometheus`);
the last tests check what the demo says when it cannot start one.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.client import InferencePublisher
from streams.config import settings_from_dict
from streams.dev.demo import LocalPrometheus, _start_prometheus
from streams.dev.label_studio import LocalLabelStudio
from streams.dev.scrape import total
from streams.dev.traffic import INVALID_KINDS, DriftSchedule, SyntheticModel, invalid_event
from streams.kafka.topics import create_topics
from streams.review.label_studio_api import LabelStudioClient
from streams.review.tasks import decode_escalation, task_payload
from tests.deploy.conftest import (
    DASHBOARDS,
    RULE_FILES,
    as_promql,
    dashboard_queries,
    load_yaml,
    render_local_prometheus_config,
    rule_exprs,
    rules_with_short_for,
)
from tests.streams.review.bridge_process import Bridge
from tests.streams.review.escalations import escalations
from tests.support import TopicReader, WorkerProcess, unique_topics, wait_until

DRIFTING, STEADY, MISCALIBRATED, FADING = "drifting", "steady", "miscalibrated", "fading"
REVIEWED = "reviewed"
REGRESSOR = "regressor"
#: The reviewed model's synthetic reviewers: three always give the true label ...
CAREFUL = ("ana", "bruno", "chen")
#: ... and one always the other label.
CARELESS = "careless"
#: Events per model and phase; the drift detectors' reference is the first 1,000.
PHASE_EVENTS = 1000
#: Well above VigilDeadLetterRateHigh's 1 %.
INVALID_SHARE = 0.05
LABEL_SHARE = 0.6
#: The drifting model's second version and its share of the model's phase-2 traffic.
NEW_VERSION = "v2"
NEW_VERSION_SHARE = 0.3
#: Share of the drifting model's phase-2 events made outliers (reason ``outlier``).
OUTLIER_SHARE = 0.02
#: Seconds of phase-1 samples before phase 2, the baseline that VigilEstimatedAccuracyDrop's
#: avg_over_time(...[1d]) sees in a fresh Prometheus.
BASELINE_SECONDS = 12.0
SHORT_FOR = "3s"
#: Grafana variables: the model that has every per-model series, and a rate window
#: that a 1 s scrape fills in seconds.
DASHBOARD_VARIABLES = {"${model}": DRIFTING, "$model": DRIFTING, "$__rate_interval": "30s"}
#: Per dashboard, variables that differ: review quality is about the reviewed model.
DASHBOARD_OVERRIDES = {"vigil-review-quality.json": {"${model}": REVIEWED, "$model": REVIEWED}}
#: Per (dashboard, panel title), variables that differ: regression panels show the
#: regression model (the drifting model is a classifier).
PANEL_OVERRIDES = {
    ("vigil-model.json", title): {"${model}": REGRESSOR, "$model": REGRESSOR}
    for title in ("Regression error (MAE, RMSE, bias)", "Interval coverage vs nominal")
}
#: Alerts whose condition the scenario does not create: the reason, and the query that
#: must return data instead - the rule's expression without its threshold.
NOT_CREATED = {
    "VigilConsumerLagHigh": (
        "sum by (topic) (max by (topic, partition) (vigil_consumer_lag))",
        # Measured here: a worker drains 10,000 (64 features) to 50,000 (1 feature)
        # events a second, so lag above 10,000 that outlasts even a 3 s for: needs a
        # burst of hundreds of thousands of events - too slow for this test. The firing
        # path is covered by promtool (deploy/prometheus/tests); here the lag series
        # must exist and the alert must stay quiet while the worker keeps up.
        "a backlog over 10,000 messages lasting seconds is impractical in a short test",
    ),
}


#: Open review tasks of ``drifting`` added to its project in each of two steps, on top of
#: its escalations: together above VigilReviewBacklogHigh's 1000, and growing.
BACKLOG_STEP = 600


class PrometheusAPI:
    """The few endpoints of Prometheus' HTTP API the test reads."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:  # 400/422: a bad query, with the reason
            body = json.load(exc)
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/targets")["activeTargets"])

    def rules(self) -> list[dict[str, Any]]:
        return [r for g in self.get("/api/v1/rules")["groups"] for r in g["rules"]]

    def firing(self) -> set[tuple[str, frozenset[tuple[str, str]]]]:
        """``(alertname, labels)`` of the alerts firing now (labels without the rule's own)."""
        own = {"alertname", "severity", "service"}
        return {
            (
                a["labels"]["alertname"],
                frozenset((k, v) for k, v in a["labels"].items() if k not in own),
            )
            for a in self.get("/api/v1/alerts")["alerts"]
            if a["state"] == "firing"
        }


class RegressionTraffic:
    """A regression model with 90 % prediction intervals (±1.645 sd of its error), honest
    until its errors triple (phase 2): then they cover about 42 % of the truths."""

    def __init__(self, model_id: str, seed: int, start: datetime) -> None:
        self.model_id = model_id
        self.rng = random.Random(seed)
        self.start = start
        self.i = 0

    def event(self, noisy: bool) -> tuple[dict[str, Any], float]:
        rng, i = self.rng, self.i
        self.i += 1
        x = [rng.gauss(0.0, 1.0) for _ in range(3)]
        value = round(10.0 + 2.0 * x[0] - x[1], 5)
        truth = round(value + rng.gauss(0.0, 3.0 if noisy else 1.0), 5)
        event = {
            "event_id": f"{self.model_id}-{i}",
            "model_id": self.model_id,
            "ts": (self.start + timedelta(milliseconds=10 * i)).isoformat(),
            "features": {f"x{k}": round(v, 5) for k, v in enumerate(x)},
            "prediction": {"value": value, "interval": [value - 1.645, value + 1.645]},
        }
        return event, truth


class Scenario:
    """The synthetic models and what the test sends for them."""

    def __init__(self) -> None:
        start = datetime.now(UTC) - timedelta(minutes=2)
        self.models = {
            DRIFTING: SyntheticModel(
                DRIFTING,
                n_numeric=3,
                seed=11,
                start=start,
                drift=[DriftSchedule("x0", start=PHASE_EVENTS, shift=3.0)],
            ),
            STEADY: SyntheticModel(STEADY, n_numeric=3, seed=12, start=start),
            MISCALIBRATED: SyntheticModel(MISCALIBRATED, n_numeric=3, seed=13, start=start),
            FADING: SyntheticModel(FADING, n_numeric=3, seed=14, start=start),
            REVIEWED: SyntheticModel(REVIEWED, n_numeric=3, seed=15, start=start),
        }
        self.regressor = RegressionTraffic(REGRESSOR, seed=16, start=start)
        #: The reviewed model's events: event id -> true label, for its reviewers.
        self.truth: dict[str, str] = {}
        self.rng = random.Random(2026)
        self.sent = 0
        self.invalid = 0
        self.labels_sent = 0

    def phase(
        self, pub: InferencePublisher, *, fading: bool
    ) -> list[tuple[dict[str, Any], str | float]]:
        """PHASE_EVENTS valid events per model, interleaved, plus malformed ones; returns
        the events with their true labels (values for the regressor)."""
        order = [m for m in [*self.models, REGRESSOR] for _ in range(PHASE_EVENTS)]
        self.rng.shuffle(order)
        out = []
        for model_id in order:
            if self.rng.random() < INVALID_SHARE:
                kind = self.rng.choice(INVALID_KINDS)
                raw, _reason = invalid_event(kind, model_id, self.sent)
                pub.publish_raw(raw, key=model_id.encode())
                self.invalid += 1
                self.sent += 1
            if model_id == REGRESSOR:
                value_event, value = self.regressor.event(noisy=fading)
                pub.publish_raw(orjson.dumps(value_event), key=model_id.encode())
                self.sent += 1
                out.append((value_event, value))
                continue
            event, truth = self.models[model_id].event()
            if fading and model_id == DRIFTING and self.rng.random() < NEW_VERSION_SHARE:
                # A second version rolled out in phase 2: the version panels and the canary.
                event["model_version"] = NEW_VERSION
            if fading and model_id == FADING:
                # The model grows unsure: every confidence is pulled to within 0.03 of 0.5.
                p = event["prediction"]["scores"]["pos"]
                p = round(0.5 + (p - 0.5) * 0.06, 6)
                event["prediction"]["scores"] = {"pos": p, "neg": round(1.0 - p, 6)}
            if fading and model_id == DRIFTING and self.rng.random() < OUTLIER_SHARE:
                # An outlier: x1 and x2 far apart, each beyond the reference's range.
                event["features"].update({"x1": 4.5, "x2": -4.5})
            pub.publish_raw(orjson.dumps(event), key=model_id.encode())
            self.sent += 1
            out.append((event, truth))
            if model_id == REVIEWED:
                self.truth[event["event_id"]] = truth
        return out

    def labels(
        self, pub: InferencePublisher, events: Iterable[tuple[dict[str, Any], str | float]]
    ) -> None:
        """Labels for a share of the labelled models' events (none for ``fading``; for
        ``reviewed``, only events its threshold policy auto-accepts: reviewers label the
        rest, and an outcome would decide them before the reviews)."""
        for event, truth in events:
            model_id = event["model_id"]
            if model_id == FADING or self.rng.random() >= LABEL_SHARE:
                continue
            if model_id == REGRESSOR:
                pub.publish_label(
                    {
                        "event_id": event["event_id"],
                        "model_id": model_id,
                        "ts": datetime.now(UTC).isoformat(),
                        "value": truth,
                        "source": "outcome",
                    }
                )
                self.labels_sent += 1
                continue
            if (
                model_id == REVIEWED
                and max(event["prediction"]["scores"].values()) < MIN_CONFIDENCE
            ):
                continue
            if model_id == MISCALIBRATED:
                truth = "neg" if event["prediction"]["label"] == "pos" else "pos"
            pub.publish_label(
                {
                    "event_id": event["event_id"],
                    "model_id": model_id,
                    "ts": datetime.now(UTC).isoformat(),
                    "label": truth,
                    "source": "outcome",
                }
            )
            self.labels_sent += 1


#: escalation.min_confidence of the synthetic models (the threshold policy's default).
MIN_CONFIDENCE = 0.6
#: Gold questions of the reviewed model, and the share of them among its escalations.
GOLD_ITEMS = 80
GOLD_RATE = 0.5


def feature_key(features: dict[str, Any]) -> bytes:
    return orjson.dumps(features, option=orjson.OPT_SORT_KEYS)


def write_gold(path: Path) -> dict[bytes, str]:
    """The reviewed model's gold file (InferenceEvents with their known ``label``); returns
    true label by :func:`feature_key` of the features, which is how the reviewers tell a
    gold item (whose escalation has a fresh event id) from the others."""
    model = SyntheticModel(REVIEWED, n_numeric=3, seed=115)
    truth: dict[bytes, str] = {}
    lines = []
    for i in range(GOLD_ITEMS):
        event, label = model.event(f"gold-{i}")
        truth[feature_key(event["features"])] = label
        lines.append(orjson.dumps({**event, "label": label}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return truth


class Reviewers:
    """The reviewed model's review team, labelling its escalations as they arrive.

    Each escalation gets ``reviews_wanted`` labels (SPEC section 4) from different
    reviewers: careful ones only on a single review, any of the four on overlapped and
    gold items. So the careless reviewer's labels reach the model only through
    adjudication, where the other review outweighs them once the gold items have shown
    who is careless, and the reviewed model stays calibrated.
    Every tenth overlapped item gets one review short (it waits: pending), and every
    tenth single review a second opinion afterwards (a late label).
    """

    def __init__(self, truth: dict[str, str], gold: dict[bytes, str], seed: int = 2027) -> None:
        self.truth = truth
        self.gold = gold
        self.rng = random.Random(seed)
        self.done: set[str] = set()
        self.count: Counter[str] = Counter()

    def label(self, pub: InferencePublisher, reader: TopicReader) -> None:
        """Label every escalation of the reviewed model read so far, once each."""
        reader.poll(2.0)
        for esc in reader.messages:
            if esc["model_id"] != REVIEWED or esc["escalation_id"] in self.done:
                continue
            self.done.add(esc["escalation_id"])
            truth = self.truth.get(esc["event_id"])
            gold = truth is None
            if gold:
                truth = self.gold[feature_key(esc["features"])]
            wanted = int(esc["reviews_wanted"])
            if wanted == 1 and not gold:
                reviewers = [self.rng.choice(CAREFUL)]
                if self.rng.random() < 0.1:
                    reviewers.append(self.rng.choice([r for r in CAREFUL if r != reviewers[0]]))
                    self.count["late"] += 1
            else:
                reviewers = self.rng.sample([*CAREFUL, CARELESS], wanted)
                if wanted > 1 and not gold and self.rng.random() < 0.1:
                    reviewers.pop()
                    self.count["pending"] += 1
            self.count["gold" if gold else f"wanted {wanted}"] += 1
            for reviewer in reviewers:
                answer = truth if reviewer != CARELESS else ("neg" if truth == "pos" else "pos")
                pub.publish_label(
                    {
                        "event_id": esc["event_id"],
                        "model_id": REVIEWED,
                        "ts": datetime.now(UTC).isoformat(),
                        "label": answer,
                        "source": "human",
                        "reviewer": reviewer,
                        "escalation_id": esc["escalation_id"],
                        "inclusion_probability": esc["inclusion_probability"],
                    }
                )
                self.count[reviewer] += 1


#: The auto-accept error that raises the autoaccept_error signal: the synthetic models'
#: threshold policy auto-accepts items it gets wrong 25-35 % of the time (measured), the
#: mislabelled model's labels say 100 %.
MAX_AUTOACCEPT_ERROR = 0.6


def worker_config(topics: dict[str, str], gold: Path) -> dict[str, Any]:
    return {
        "app_id": f"vigil-test-{topics['inference']}",
        "topics": {**topics, "partitions": 3},
        "defaults": {
            # Every label comes from an outcome source that reports on LABEL_SHARE of the
            # events, audited or not: no audit sample, whose labels vigil would weigh by
            # the audit probability.
            "labels": {"outcome_rate": LABEL_SHARE},
            "review": {"audit_rate": 0},
            "escalation": {"max_autoaccept_error": MAX_AUTOACCEPT_ERROR},
        },
        "models": {
            # Segments (issue 16): the synthetic events carry a region; the model
            # dashboard's segment panels read this model's per-region series.
            DRIFTING: {
                "escalation": {"budget_per_minute": 1},
                "segments": {"keys": ["region"], "features": ["x0"]},
            },
            REVIEWED: {
                "review": {
                    "gold": str(gold),
                    "gold_rate": GOLD_RATE,
                    "overlap_rate": 0.5,
                    "overlap_reviews": 2,
                    # Few items before a verdict: the careless reviewer answers tens of
                    # gold items in this test, the overlap gives a few hundred items.
                    "flag_min_items": 5,
                    "agreement_window": 100,
                },
            },
        },
    }


@pytest.mark.kafka
@pytest.mark.prometheus
@pytest.mark.label_studio
def test_dashboards_and_rules_against_a_real_prometheus(
    kafka_bootstrap: str, prometheus_server: str, label_studio: LocalLabelStudio, tmp_path: Path
) -> None:
    topics = unique_topics("prom-e2e")
    gold = write_gold(tmp_path / "gold.jsonl")
    config = worker_config(topics, tmp_path / "gold.jsonl")
    create_topics(settings_from_dict({**config, "kafka": {"bootstrap": kafka_bootstrap}}))
    rules_dir = rules_with_short_for(tmp_path / "rules", for_=SHORT_FOR)

    dashboard = [
        (
            f"{path.name}: {title}",
            as_promql(
                expr,
                DASHBOARD_VARIABLES
                | DASHBOARD_OVERRIDES.get(path.name, {})
                | PANEL_OVERRIDES.get((path.name, title), {}),
            ),
        )
        for path in DASHBOARDS
        for title, expr in dashboard_queries(path)
    ]
    rules = []
    for name, expr in rule_exprs():
        if name in NOT_CREATED:
            substitute, _reason = NOT_CREATED[name]
            # Tied to the rule: if its expression changes, this entry must be revisited.
            assert expr.strip().startswith(substitute), (name, expr)
            expr = substitute
        rules.append((f"rule {name}", expr))
    expressions = dict.fromkeys(expr for _, expr in dashboard + rules)
    where: dict[str, list[str]] = {}
    for name, expr in dashboard + rules:
        where.setdefault(expr, []).append(name)
    had_data: set[str] = set()
    seen_firing: set[tuple[str, frozenset[tuple[str, str]]]] = set()

    # The review bridge, a real process, takes the drifting model's escalations to its
    # project in the session's Label Studio and reports that model's backlog every second.
    review = LabelStudioClient(label_studio.url, label_studio.token)
    bridge = Bridge(
        kafka_bootstrap,
        topics,
        label_studio,
        tmp_path,
        reconcile_every_s=3600,
        backlog_every_s=1,
        models=[DRIFTING],
    )
    backlog_tasks = [
        {"data": task_payload(decode_escalation(r))["data"]}
        for r in escalations(DRIFTING, 2 * BACKLOG_STEP)
    ]

    def drifting_project() -> int:
        """The project the bridge made for the drifting model's first escalations."""
        title = f"{bridge.tag} {DRIFTING}"
        assert wait_until(lambda: review.find_project(title) is not None, timeout=60), (
            bridge.log_tail()
        )
        project = review.find_project(title)
        assert project is not None
        return project.id

    worker = WorkerProcess(kafka_bootstrap, config, tmp_path).start()
    prometheus = LocalPrometheus(
        worker.port,
        review_metrics_port=bridge.metrics_port,
        rules_dir=rules_dir,
        binary=prometheus_server,
        workdir=tmp_path,
    )
    scenario = Scenario()
    reviewers = Reviewers(scenario.truth, gold)
    escalations_read = TopicReader(kafka_bootstrap, topics["escalations"])
    try:
        bridge.start()
        prometheus.start()
        api = PrometheusAPI(prometheus.url)
        assert prometheus.config_path.read_text() == render_local_prometheus_config(
            worker.port, rules_dir, bridge.metrics_port
        )

        def observe() -> None:
            for expr in expressions:
                if expr not in had_data and api.query(expr):
                    had_data.add(expr)
            seen_firing.update(api.firing())

        # The worker and the review bridge's metrics are healthy targets.
        def targets_up() -> bool:
            up = {t["labels"]["job"] for t in api.targets() if t["health"] == "up"}
            return up == {"vigil", "vigil-review"}

        assert wait_until(targets_up, timeout=30), [
            (t["scrapeUrl"], t["health"], t["lastError"]) for t in api.targets()
        ]
        (target,) = [t for t in api.targets() if t["labels"]["job"] == "vigil"]
        assert target["scrapeUrl"] == worker.metrics_url
        instance = target["labels"]["instance"]

        # Every rule of every file is loaded (a file Prometheus could not parse would
        # have stopped it from starting).
        loaded = api.rules()
        n_rules = sum(len(g["rules"]) for p in RULE_FILES for g in load_yaml(p)["groups"])
        assert len(loaded) == n_rules

        with InferencePublisher(
            kafka_bootstrap, topic=topics["inference"], labels_topic=topics["labels"]
        ) as pub:
            # Phase 1: every model as trained; drifting's reference fills.
            events = scenario.phase(pub, fading=False)
            pub.flush()
            caught_up(worker, scenario.sent)
            scenario.labels(pub, events)
            reviewers.label(pub, escalations_read)
            pub.flush()
            # The drifting model's escalations are tasks now; reviewers fall behind.
            queue = drifting_project()
            review.import_tasks(queue, backlog_tasks[:BACKLOG_STEP])

            # A baseline for the estimated accuracy, then phase 2: drift, the fading
            # model's confidence collapse, more contradicting labels.
            baseline_until = time.monotonic() + BASELINE_SECONDS
            while time.monotonic() < baseline_until:
                observe()
                time.sleep(1.0)
            # The review queue grows past VigilReviewBacklogHigh's 1000.
            review.import_tasks(queue, backlog_tasks[BACKLOG_STEP:])
            events = scenario.phase(pub, fading=True)
            pub.flush()
            caught_up(worker, scenario.sent)
            scenario.labels(pub, events)
            reviewers.label(pub, escalations_read)
            pub.flush()
        # Enough of everything for the review-quality series (several times the minimum).
        assert reviewers.count["gold"] >= 20 and reviewers.count["wanted 2"] >= 50, reviewers.count
        assert reviewers.count["late"] and reviewers.count["pending"], reviewers.count

        expected = {
            ("VigilModelInDrift", frozenset({("model", DRIFTING), ("signal", "feature:x0")})),
            ("VigilCalibrationDegraded", frozenset({("model", MISCALIBRATED)})),
            (
                "VigilModelInDrift",
                frozenset({("model", MISCALIBRATED), ("signal", "autoaccept_error")}),
            ),
            ("VigilEstimatedAccuracyDrop", frozenset({("model", FADING)})),
            ("VigilEscalationsSuppressed", frozenset({("model", DRIFTING)})),
            ("VigilDeadLetterRateHigh", frozenset()),
            ("VigilReviewBacklogHigh", frozenset({("model", DRIFTING)})),
            ("VigilReviewBacklogGrowing", frozenset({("model", DRIFTING)})),
            ("VigilReviewerBelowGoldBar", frozenset({("reviewer", CARELESS)})),
            ("VigilReviewAgreementLow", frozenset({("model", REVIEWED)})),
            ("VigilIntervalCoverageLow", frozenset({("model", REGRESSOR)})),
        }

        def all_seen() -> bool:
            observe()
            no_data = [e for e in expressions if e not in had_data]
            # VigilWorkerDown's and VigilReviewBridgeDown's conditions need the worker and
            # the bridge stopped, below.
            down = {'up{job="vigil"} == 0', 'up{job="vigil-review"} == 0'}
            return set(no_data) == down and expected <= seen_firing

        wait_until(all_seen, timeout=60, interval=1.0)
        for rule in api.rules():
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))

        # The worker and the bridge stop: their targets go down and their alerts fire.
        (bridge_target,) = [t for t in api.targets() if t["labels"]["job"] == "vigil-review"]
        assert worker.stop() == 0, worker.log_tail()
        bridge.stop()
        downs = {
            ("VigilWorkerDown", frozenset({("instance", instance), ("job", "vigil")})),
            (
                "VigilReviewBridgeDown",
                frozenset(
                    {("instance", bridge_target["labels"]["instance"]), ("job", "vigil-review")}
                ),
            ),
        }

        def down_seen() -> bool:
            observe()
            return downs <= seen_firing

        wait_until(down_seen, timeout=30, interval=1.0)
        expected |= downs
    finally:
        prometheus.stop()
        worker.stop()
        bridge.stop()
        escalations_read.consumer.close()

    no_data = {e: where[e] for e in expressions if e not in had_data}
    assert not no_data, f"queries that never returned data: {json.dumps(no_data, indent=1)}"
    missing = expected - seen_firing
    assert not missing, f"alerts that never fired: {sorted(missing)}; fired: {sorted(seen_firing)}"
    for name, labels in seen_firing:
        model = dict(labels).get("model")
        assert model != STEADY, f"{name} fired for the stationary, calibrated model"
        assert name not in NOT_CREATED, f"{name} fired, but the scenario does not create it"
        if name == "VigilEscalationsSuppressed":
            assert model == DRIFTING, f"suppression reported for {model}, which has no budget"
        if name == "VigilCalibrationDegraded":
            assert model == MISCALIBRATED, f"{model} reported miscalibrated"
        if name == "VigilReviewerBelowGoldBar":
            assert dict(labels)["reviewer"] == CARELESS, f"{labels} flagged below the gold bar"
        if name == "VigilReviewAgreementLow":
            assert model == REVIEWED, f"low agreement reported for {model}, which has no overlap"
        if name == "VigilIntervalCoverageLow":
            assert model == REGRESSOR, f"interval coverage reported low for {model}"


def caught_up(worker: WorkerProcess, sent: int, timeout: float = 60.0) -> None:
    """Wait until the worker has consumed (processed or dead-lettered) ``sent`` events."""
    consumed = 0.0

    def done() -> bool:
        nonlocal consumed
        consumed = total(worker.scrape(), "vigil_events_total")
        return consumed >= sent

    assert wait_until(done, timeout=timeout), (
        f"worker consumed {consumed:.0f} of {sent} events in {timeout:g} s:\n{worker.log_tail()}"
    )


def test_local_prometheus_says_what_is_missing(tmp_path: Path) -> None:
    assert "not on PATH" in (LocalPrometheus(1, binary="no-such-prometheus").missing() or "")
    missing_rules = LocalPrometheus(1, binary="sh", rules_dir=tmp_path / "rules")
    assert "deploy/prometheus" in (missing_rules.missing() or "")


def test_demo_carries_on_without_prometheus() -> None:
    line = _start_prometheus(LocalPrometheus(1, binary="no-such-prometheus"))
    assert line.startswith("not started (") and "apt-get install prometheus" in line
