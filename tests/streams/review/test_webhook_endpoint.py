"""The bridge's webhook endpoint over real HTTP (streams/review/webhook_endpoint.py)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import orjson
import pytest

from streams.review.bridge_metrics import BridgeMetrics
from streams.review.webhook_endpoint import MAX_BODY_BYTES, WEBHOOK_SECRET_HEADER, WebhookEndpoint

SECRET = "correct horse"


@pytest.fixture
def endpoint() -> Iterator[WebhookEndpoint]:
    served = WebhookEndpoint("127.0.0.1", 0, SECRET, BridgeMetrics(), queue_size=2).start()
    try:
        yield served
    finally:
        served.stop()


def _post(endpoint: WebhookEndpoint, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    try:
        connection.request("POST", "/webhook", body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def _annotation_payload(action: str = "ANNOTATION_CREATED") -> bytes:
    return orjson.dumps(
        {"action": action, "annotation": {"id": 1}, "task": {"id": 2}, "project": {"id": 3}}
    )


def _refusals(endpoint: WebhookEndpoint, reason: str) -> float:
    value = endpoint.metrics.registry.get_sample_value(
        "vigil_review_bridge_webhook_refusals_total", {"reason": reason}
    )
    return 0.0 if value is None else value


def test_an_annotation_with_the_secret_is_handed_off(endpoint: WebhookEndpoint) -> None:
    status = _post(endpoint, _annotation_payload(), {WEBHOOK_SECRET_HEADER: SECRET})
    assert status == 200
    task, annotation = endpoint.handoff.get_nowait()
    assert (task["id"], annotation["id"]) == (2, 1)


@pytest.mark.parametrize(
    "given", [None, "", "wrong", SECRET + " "], ids=["none", "empty", "wrong", "longer"]
)
def test_without_the_secret_the_answer_is_401_and_it_is_counted(
    endpoint: WebhookEndpoint, given: str | None
) -> None:
    headers = {} if given is None else {WEBHOOK_SECRET_HEADER: given}
    assert _post(endpoint, _annotation_payload(), headers) == 401
    assert _refusals(endpoint, "secret") == 1
    assert endpoint.handoff.empty()


def test_bad_bodies_are_refused_with_their_reason(endpoint: WebhookEndpoint) -> None:
    ok = {WEBHOOK_SECRET_HEADER: SECRET}
    assert _post(endpoint, b"{not json", ok) == 400
    assert _post(endpoint, b"[1, 2]", ok) == 400
    assert _post(endpoint, orjson.dumps({"action": "ANNOTATION_UPDATED", "task": 1}), ok) == 400
    assert _refusals(endpoint, "invalid") == 3
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    connection.putrequest("POST", "/webhook")
    connection.putheader(WEBHOOK_SECRET_HEADER, SECRET)
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()  # the body is never sent: refused on its announced size
    assert connection.getresponse().status == 413
    connection.close()
    assert _refusals(endpoint, "too_large") == 1
    assert endpoint.handoff.empty()


def test_other_actions_are_acknowledged_and_ignored(endpoint: WebhookEndpoint) -> None:
    body = orjson.dumps({"action": "PROJECT_UPDATED", "project": {"id": 3}})
    assert _post(endpoint, body, {WEBHOOK_SECRET_HEADER: SECRET}) == 200
    assert endpoint.handoff.empty()


def test_a_full_hand_off_queue_answers_503(endpoint: WebhookEndpoint) -> None:
    ok = {WEBHOOK_SECRET_HEADER: SECRET}
    assert [_post(endpoint, _annotation_payload(), ok) for _ in range(3)] == [200, 200, 503]
    assert _refusals(endpoint, "busy") == 1
    assert endpoint.handoff.qsize() == 2


def test_health(endpoint: WebhookEndpoint) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
    connection.close()


def test_an_empty_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookEndpoint("127.0.0.1", 0, "", BridgeMetrics())
