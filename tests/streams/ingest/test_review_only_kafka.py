"""Labels from reviewers only, through a real broker and a real worker process.

Reviewers label exactly what vigil sends them: every escalation (the uncertain items,
where the model is often wrong) and the audit sample of auto-accepted items. Read as a
random sample, those labels say the model is much worse than it is; weighed by the
inverse of the inclusion probability each escalation carries, they give the accuracy
of all traffic and the error rate of what was auto-accepted.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from detectors.audit import audit_draw
from streams.client import InferencePublisher
from streams.dev.scrape import total
from tests.support import TopicReader, start_worker, wait_until

pytestmark = pytest.mark.kafka

N = 6_000
MIN_CONFIDENCE = 0.8
AUDIT_RATE = 0.15


def test_review_only_labels_give_the_accuracy_of_all_traffic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics, worker = start_worker(
        kafka_bootstrap,
        tmp_path,
        "review",
        {
            "defaults": {
                "escalation": {"min_confidence": MIN_CONFIDENCE, "data_reasons": False},
                "review": {"audit_rate": AUDIT_RATE},
                "drift": {"sensitivity": 1e12},
            }
        },
    )
    escalations = TopicReader(kafka_bootstrap, topics["escalations"])
    # A calibrated model, mostly confident: P(right) is its confidence.
    rng = random.Random(13)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    truth: dict[str, bool] = {}
    uncertain: set[str] = set()
    try:
        with InferencePublisher(
            kafka_bootstrap, topic=topics["inference"], labels_topic=topics["labels"]
        ) as pub:
            for i in range(N):
                confidence = 0.5 + 0.5 * rng.random() ** 0.4
                event_id = f"e-{i}"
                truth[event_id] = rng.random() < confidence
                if confidence < MIN_CONFIDENCE:
                    uncertain.add(event_id)
                event = {
                    "event_id": event_id,
                    "model_id": "reviewed",
                    "ts": (t0 + timedelta(milliseconds=i)).isoformat(),
                    "prediction": {"label": "pos", "confidence": confidence},
                    "features": {"x": rng.gauss(0, 1)},
                }
                pub.publish_raw(orjson.dumps(event), key=b"reviewed")
            pub.flush()
            assert wait_until(
                lambda: total(worker.scrape(), "vigil_events_total", outcome="processed") >= N,
                timeout=90,
            ), worker.log_tail()
            # Escalated by rule: the uncertain ones; audited: the draw of the others.
            want_audits = {
                i for i in truth if i not in uncertain and audit_draw("reviewed", i) < AUDIT_RATE
            }
            sent = escalations.read_until(len(uncertain) + len(want_audits), timeout=60)
            by_id = {e["event_id"]: e for e in sent}  # at-least-once: one review per event
            audits = {i for i, e in by_id.items() if e["reasons"][0]["kind"] == "audit"}
            assert set(by_id) - audits == uncertain
            assert audits == want_audits
            assert abs(len(audits) - AUDIT_RATE * (N - len(uncertain))) < 4 * len(audits) ** 0.5
            # The escalation says how it was chosen.
            assert {by_id[i]["inclusion_probability"] for i in audits} == {AUDIT_RATE}
            assert {by_id[i]["inclusion_probability"] for i in uncertain} == {1.0}
            # The review team labels every escalation and nothing else.
            for e in by_id.values():
                right = truth[e["event_id"]]
                pub.publish_label(
                    {
                        "event_id": e["event_id"],
                        "model_id": "reviewed",
                        "ts": (
                            datetime.fromisoformat(e["event_ts"]) + timedelta(minutes=5)
                        ).isoformat(),
                        "label": "pos" if right else "neg",
                        "source": "human",
                        "reviewer": "r1",
                        "escalation_id": e["escalation_id"],
                    }
                )
            pub.flush()
        assert wait_until(
            lambda: (
                total(worker.scrape(), "vigil_labels_total", model="reviewed", outcome="joined")
                >= len(by_id)
            ),
            timeout=60,
        ), worker.log_tail()

        true_accuracy = sum(truth.values()) / N
        labelled = [truth[i] for i in by_id]
        unweighted = sum(labelled) / len(labelled)
        accepted_ids = [i for i in truth if i not in uncertain]
        true_autoaccept_error = sum(not truth[i] for i in accepted_ids) / len(accepted_ids)
        # The data are such that reading the labels as a random sample is far off...
        assert unweighted < true_accuracy - 0.06
        # ...and vigil's figure is the accuracy of all traffic, not of the labelled items.
        accuracy = worker.gauge("vigil_accuracy", model="reviewed")
        assert accuracy is not None
        assert abs(accuracy - true_accuracy) < 0.025, (accuracy, true_accuracy, unweighted)
        error = worker.gauge("vigil_autoaccept_error", model="reviewed")
        upper = worker.gauge("vigil_autoaccept_error_upper", model="reviewed")
        assert error is not None and upper is not None
        assert abs(error - true_autoaccept_error) < 0.025
        assert error < upper and true_autoaccept_error <= upper
    finally:
        escalations.close()
        worker.stop()
