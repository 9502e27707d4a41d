"""The Faust app's consumer, before any broker is involved."""

from __future__ import annotations

from streams.app import create_app
from streams.config import settings_from_dict


def test_assignment_is_empty_before_the_consumer_thread_runs() -> None:
    # Faust's table manager asks one second after start; on a loaded machine the aiokafka
    # thread was not up yet and the worker died with ConsumerNotStarted.
    vigil = create_app(settings_from_dict({"app_id": "vigil-test-faust-app"}))
    assert vigil.app.consumer.assignment() == set()
