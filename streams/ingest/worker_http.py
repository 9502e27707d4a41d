"""A worker's HTTP server: ``/healthz`` for liveness probes, ``/metrics`` for Prometheus.

``GET /healthz`` answers ``200 ok: ...`` while the ingest loop goes round and ``503`` with
the reason once it has been silent longer than ``worker.liveness_timeout_s``
(:mod:`streams.ingest.liveness`); every other path answers as prometheus-client's own
server does (the metrics, ``/metrics`` or any other path). The server runs on daemon
threads, one per request, as prometheus-client's ``start_http_server`` does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from streams.ingest.liveness import Liveness

__all__ = ["serve_worker_http"]

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per request (a scrape every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def worker_app(registry: CollectorRegistry, liveness: Liveness) -> Callable[..., Iterable[bytes]]:
    """The WSGI application: ``/healthz`` from ``liveness``, anything else the metrics."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            alive, why = liveness.check()
            body = f"{why}\n".encode()
            start_response(
                "200 OK" if alive else "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return metrics(environ, start_response)

    return app


def serve_worker_http(
    host: str, port: int, registry: CollectorRegistry, liveness: Liveness
) -> tuple[WSGIServer, threading.Thread]:
    """Serve :func:`worker_app` on ``host:port`` (IPv4 or IPv6, as ``host`` resolves) from
    a daemon thread; returns the server (``shutdown()`` stops it) and the thread."""
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]

    class Server(ThreadingWSGIServer):
        address_family = family

    httpd = make_server(
        str(sockaddr[0]),
        port,
        worker_app(registry, liveness),
        Server,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=httpd.serve_forever, name="vigil-http", daemon=True)
    thread.start()
    return httpd, thread
