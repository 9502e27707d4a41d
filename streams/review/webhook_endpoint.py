"""The bridge's webhook endpoint: Label Studio's annotation webhooks in, handed off at once.

Label Studio sends each webhook once, waits 1 s at most and never retries, so the endpoint
does no work on the request path beyond checking it: it puts ``(task, annotation)`` on a
bounded queue and answers ``200``; the bridge's label loop publishes from the queue. A
webhook that never arrives (the bridge was down, the queue was full, the network dropped
it) is caught by reconciliation; the endpoint is the fast path, not the guarantee.

Requests (``POST`` to any path; ``GET /healthz`` answers ``ok``):

* without the shared secret in :data:`WEBHOOK_SECRET_HEADER` (compared in constant
  time): ``401``, counted as ``webhook_refusals{reason="secret"}``;
* a body over :data:`MAX_BODY_BYTES`, or without a length: ``413`` (``too_large``);
* not JSON, or an annotation action without an ``annotation`` and ``task`` object: ``400``
  (``invalid``);
* the hand-off queue full: ``503`` (``busy``);
* any other action: ``200``, ignored. ``ANNOTATION_CREATED``/``ANNOTATION_UPDATED``:
  ``200`` once queued.
"""

from __future__ import annotations

import hmac
import logging
import queue
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from streams.review.bridge_metrics import BridgeMetrics

__all__ = [
    "MAX_BODY_BYTES",
    "WEBHOOK_ACTIONS",
    "WEBHOOK_SECRET_HEADER",
    "Handoff",
    "WebhookEndpoint",
]

log = logging.getLogger(__name__)

#: The header that carries the shared secret (set on the webhook the bridge registers).
WEBHOOK_SECRET_HEADER = "X-Vigil-Webhook-Secret"  # noqa: S105 - a header name, not a secret

#: The Label Studio actions the bridge subscribes to.
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")

#: A webhook carries one annotation and its task (data, predictions): far below this.
MAX_BODY_BYTES = 4 * 1024 * 1024

#: ``(task, annotation)`` from one webhook.
Handoff = tuple[Mapping[str, Any], Mapping[str, Any]]


class WebhookEndpoint:
    """An HTTP server in a thread; :attr:`handoff` is what the label loop drains."""

    def __init__(
        self,
        host: str,
        port: int,
        secret: str,
        metrics: BridgeMetrics,
        *,
        queue_size: int = 10_000,
    ) -> None:
        if not secret:
            raise ValueError("the webhook secret must not be empty")
        self.metrics = metrics
        self.handoff: queue.Queue[Handoff] = queue.Queue(maxsize=queue_size)
        self._secret = secret.encode()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-endpoint", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> WebhookEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- one request ----------------------------------------------------------------------

    def answer(self, secret: str, body: bytes | None) -> int:
        """The status for one POST carrying ``secret`` in its header (``""`` if none) and
        ``body`` (``None``: too large or no length)."""
        if not hmac.compare_digest(secret.encode(), self._secret):
            return self._refuse("secret", 401)
        if body is None:
            return self._refuse("too_large", 413)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._refuse("invalid", 400)
        if not isinstance(payload, dict):
            return self._refuse("invalid", 400)
        action = payload.get("action")
        if action not in WEBHOOK_ACTIONS:
            return 200
        task, annotation = payload.get("task"), payload.get("annotation")
        if not isinstance(task, dict) or not isinstance(annotation, dict):
            return self._refuse("invalid", 400)
        try:
            self.handoff.put_nowait((task, annotation))
        except queue.Full:
            return self._refuse("busy", 503)
        self.metrics.webhooks_received.labels(action).inc()
        return 200

    def _refuse(self, reason: str, status: int) -> int:
        self.metrics.webhook_refusals.labels(reason).inc()
        return status


def _handler(endpoint: WebhookEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length")
            body: bytes | None = None
            if length is not None and length.isdigit() and int(length) <= MAX_BODY_BYTES:
                body = self.rfile.read(int(length))
            else:
                self.close_connection = True
            status = endpoint.answer(self.headers.get(WEBHOOK_SECRET_HEADER, ""), body)
            self._send(status, b'{"ok":true}' if status == 200 else b'{"ok":false}')

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, b"ok")
            else:
                self._send(404, b"not found")

        def _send(self, status: int, text: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("webhook %s: " + format, self.client_address[0], *args)

    return Handler
