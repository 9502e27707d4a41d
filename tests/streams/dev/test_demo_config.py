"""The configuration ``vigil demo`` gives its worker: the user's, plus the demo's review
and label settings, without secrets."""

from __future__ import annotations

from pathlib import Path

import yaml

from streams.config import settings_from_dict
from streams.config.settings import Settings
from streams.dev.demo import (
    ADJUDICATION_TIMEOUT_S,
    AUDIT_RATE,
    GOLD_RATE,
    MAX_AUTOACCEPT_ERROR,
    OUTCOME_MODEL,
    OUTCOME_SHARE,
    OVERLAP_RATE,
    OVERLAP_REVIEWS,
    demo_models,
    worker_config,
    write_gold,
)
from streams.processing.gold import GoldSet

MODELS = [m.model_id for m in demo_models(300.0)]
REVIEWED = [m for m in MODELS if m != OUTCOME_MODEL]


def test_the_outcome_model_is_one_of_the_demo_models_and_the_others_are_reviewed() -> None:
    assert OUTCOME_MODEL in MODELS
    assert len(REVIEWED) == 2


def test_the_demo_settings_reach_the_worker() -> None:
    settings = settings_from_dict(worker_config(Settings(), MODELS))
    for model in REVIEWED:
        ms = settings.for_model(model)
        assert ms.review.audit_rate == AUDIT_RATE
        assert ms.labels.outcome_rate == 1.0  # no outcome source: unused
        assert ms.escalation.max_autoaccept_error == MAX_AUTOACCEPT_ERROR
    outcome = settings.for_model(OUTCOME_MODEL)
    # Weighs the outcome system's labels by the share it really labels; no audit.
    assert outcome.labels.outcome_rate == OUTCOME_SHARE
    assert outcome.review.audit_rate == 0.0


def test_what_the_user_set_wins() -> None:
    user = settings_from_dict(
        {
            "app_id": "mine",
            "topics": {"escalations": "my.escalations"},
            "defaults": {"review": {"audit_rate": 0.1}, "escalation": {"min_confidence": 0.7}},
            "models": {OUTCOME_MODEL: {"labels": {"max_pending": 500}}},
        }
    )
    settings = settings_from_dict(worker_config(user, MODELS))
    assert (settings.app_id, settings.topics.escalations) == ("mine", "my.escalations")
    assert settings.for_model(REVIEWED[0]).review.audit_rate == 0.1
    assert settings.for_model(REVIEWED[0]).escalation.min_confidence == 0.7
    churn = settings.for_model(OUTCOME_MODEL)
    # The user's keys and the demo's meet in one model section.
    assert (churn.labels.max_pending, churn.labels.outcome_rate) == (500, OUTCOME_SHARE)
    assert churn.escalation.min_confidence == 0.7  # from the user's defaults


def test_no_secret_in_the_worker_config() -> None:
    user = settings_from_dict(
        {
            "kafka": {
                "security_protocol": "SASL_SSL",
                "sasl_username": "demo",
                "sasl_password": "s3cret-value",
            }
        }
    )
    config = worker_config(user, MODELS)
    text = yaml.safe_dump(config)
    assert "s3cret" not in text and "*****" not in text
    assert config["kafka"] == {"security_protocol": "SASL_SSL", "sasl_username": "demo"}


def test_every_model_asks_for_overlap_and_gets_gold_questions(tmp_path: Path) -> None:
    gold = write_gold(demo_models(300.0), tmp_path)
    settings = settings_from_dict(worker_config(Settings(), MODELS, gold))
    for model in MODELS:
        review = settings.for_model(model).review
        assert (review.overlap_rate, review.overlap_reviews) == (OVERLAP_RATE, OVERLAP_REVIEWS)
        assert review.adjudication_timeout_s == ADJUDICATION_TIMEOUT_S
        assert review.gold == str(gold[model]) and review.gold_rate == GOLD_RATE
        assert len(GoldSet.load(review.gold)) == 50
    # The outcome model keeps its own settings next to its gold file.
    churn = settings.for_model(OUTCOME_MODEL)
    assert (churn.labels.outcome_rate, churn.review.audit_rate) == (OUTCOME_SHARE, 0.0)
    # Without gold files (or for a model that is not the demo's), no gold questions.
    plain = settings_from_dict(worker_config(Settings(), MODELS))
    assert all(plain.for_model(m).review.gold is None for m in MODELS)
    only = settings_from_dict(worker_config(Settings(), MODELS[:1], gold))
    assert only.for_model(MODELS[1]).review.gold is None
