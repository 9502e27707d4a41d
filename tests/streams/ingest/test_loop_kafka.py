"""Drift and the label loop through a real broker and a real worker process.

* A drifting scenario produces exactly the expected alert edges (one ``drift`` and one
  ``recovered`` for the shifted feature, nothing for the others) and the gauges follow.
* Reviewers' labels for escalated items move the calibration metrics and the conformal
  threshold the way they should.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.client import InferencePublisher
from streams.dev.scrape import total
from streams.dev.traffic import DriftSchedule, SyntheticModel
from tests.support import TopicReader, start_worker, wait_until

pytestmark = pytest.mark.kafka


def test_drift_scenario_gives_exactly_one_drift_and_one_recovery(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    n, shift_at, shift_end = 9_000, 3_000, 5_000
    start_ts = datetime.now(UTC) - timedelta(hours=1)
    model = SyntheticModel(
        "drifty",
        n_numeric=4,
        n_categorical=1,
        seed=21,
        start=start_ts,
        drift=[DriftSchedule("x2", start=shift_at, end=shift_end, shift=2.0)],
    )
    topics, worker = start_worker(
        kafka_bootstrap,
        tmp_path,
        "loop",
        {"defaults": {"drift": {"reference_size": 1000}, "escalation": {"data_reasons": False}}},
    )
    alerts = TopicReader(kafka_bootstrap, topics["alerts"])
    try:
        with InferencePublisher(kafka_bootstrap, topic=topics["inference"]) as pub:
            for _ in range(shift_end):
                event, _ = model.event()
                pub.publish_raw(orjson.dumps(event), key=b"drifty")
        assert wait_until(
            lambda: total(worker.scrape(), "vigil_events_total", outcome="processed") >= shift_end,
            timeout=60,
        )
        # In drift now: the gauge says so.
        assert wait_until(
            lambda: worker.gauge("vigil_drift_active", model="drifty", signal="feature:x2") == 1,
            timeout=10,
        )
        assert worker.gauge("vigil_drift_active", model="drifty", signal="feature:x0") == 0
        with InferencePublisher(kafka_bootstrap, topic=topics["inference"]) as pub:
            for _ in range(n - shift_end):
                event, _ = model.event()
                pub.publish_raw(orjson.dumps(event), key=b"drifty")
        assert wait_until(
            lambda: total(worker.scrape(), "vigil_events_total", outcome="processed") >= n,
            timeout=60,
        )
        got = alerts.read_until(2, timeout=30, settle=3)
        x2 = [(a["signal"], a["state"]) for a in got if a["signal"] == "feature:x2"]
        assert x2 == [("feature:x2", "drift"), ("feature:x2", "recovered")], got
        drift, recovered = (a for a in got if a["signal"] == "feature:x2")
        assert shift_at < drift["events_seen"] < shift_at + 1_000
        assert shift_end < recovered["events_seen"] < shift_end + 2_000
        assert drift["alert_id"] != recovered["alert_id"]
        others = [
            a for a in got if a["signal"].startswith("feature:") and a["signal"] != "feature:x2"
        ]
        assert others == []
        assert worker.gauge("vigil_drift_active", model="drifty", signal="feature:x2") == 0
        assert (
            total(worker.scrape(), "vigil_alerts_total", model="drifty", signal="feature:x2") == 2
        )
    finally:
        alerts.close()
        worker.stop()


def test_reviewer_labels_move_calibration_and_the_conformal_threshold(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Phase 1: reviewers confirm what was escalated (the model is right): the conformal
    threshold relaxes (escalates less), accuracy is high. Phase 2: the model turns wrong on
    what it is confident about; labels say so: ECE rises and the threshold tightens."""
    topics, worker = start_worker(
        kafka_bootstrap,
        tmp_path,
        "loop",
        {
            "defaults": {
                "escalation": {
                    "policy": "conformal",
                    "target_error": 0.05,
                    "min_confidence": 0.8,
                    "data_reasons": False,
                },
                "calibration": {"window": 400},
                "drift": {"sensitivity": 1e12},
            },
        },
    )
    model = SyntheticModel(
        "reviewed", n_numeric=3, seed=5, start=datetime.now(UTC) - timedelta(hours=1)
    )
    escalations = TopicReader(kafka_bootstrap, topics["escalations"])
    try:
        threshold0 = None
        with InferencePublisher(
            kafka_bootstrap, topic=topics["inference"], labels_topic=topics["labels"]
        ) as pub:

            def run(n: int, right: bool) -> None:
                # Labels come after their predictions were processed, as reviews do (a
                # label that overtakes its prediction is counted unmatched).
                events = [model.event()[0] for _ in range(n)]
                for event in events:
                    pub.publish_raw(orjson.dumps(event), key=b"reviewed")
                pub.flush()
                want = model.i
                assert wait_until(
                    lambda: (
                        total(
                            worker.scrape(),
                            "vigil_events_total",
                            model="reviewed",
                            outcome="processed",
                        )
                        >= want
                    ),
                    timeout=60,
                )
                for event in events:
                    pred = event["prediction"]["label"]
                    wrong = "neg" if pred == "pos" else "pos"
                    pub.publish_label(
                        {
                            "event_id": event["event_id"],
                            "model_id": "reviewed",
                            "ts": (
                                datetime.fromisoformat(event["ts"]) + timedelta(seconds=1)
                            ).isoformat(),
                            "label": pred if right else wrong,
                            "source": "human",
                            "reviewer": "r1",
                        }
                    )
                pub.flush()

            run(400, right=True)
            assert wait_until(
                lambda: worker.gauge("vigil_escalation_threshold", model="reviewed") is not None,
                timeout=60,
            )
            assert wait_until(
                lambda: (
                    total(worker.scrape(), "vigil_labels_total", model="reviewed", outcome="joined")
                    >= 400
                ),
                timeout=60,
            )
            threshold0 = worker.gauge("vigil_escalation_threshold", model="reviewed")
            acc1 = worker.gauge("vigil_accuracy", model="reviewed")
            ece1 = worker.gauge("vigil_calibration_ece", model="reviewed")
            assert acc1 == 1.0
            # The model is never wrong: auto-accepted error is below target, so the
            # threshold on confidence relaxes (lower than where it started, 0.8).
            assert threshold0 is not None and threshold0 < 0.8

            run(400, right=False)
            assert wait_until(
                lambda: (
                    total(worker.scrape(), "vigil_labels_total", model="reviewed", outcome="joined")
                    >= 800
                ),
                timeout=60,
            )
            time.sleep(1)
            acc2 = worker.gauge("vigil_accuracy", model="reviewed")
            ece2 = worker.gauge("vigil_calibration_ece", model="reviewed")
            threshold2 = worker.gauge("vigil_escalation_threshold", model="reviewed")
        assert acc2 is not None and acc2 < 0.2
        assert ece1 is not None and ece2 is not None and ece2 > ece1 + 0.25
        assert threshold2 is not None and threshold2 > threshold0
        bins = [
            v
            for lab, v in worker.scrape().get("vigil_reliability_bin_accuracy", [])
            if lab["model"] == "reviewed"
        ]
        assert bins and max(bins) < 0.5
        assert escalations.read_until(1, timeout=20)  # the loop escalated something
    finally:
        escalations.close()
        worker.stop()
