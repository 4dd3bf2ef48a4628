"""`/metrics` on its own port: loopback by default, a bearer token when it must be reachable.

The figures name the indicators that hit and the state of every lane, so they are not
served on the officers' console (whose pages need a login and whose `/healthz` says
nothing sensitive). A Prometheus on the board, or a node exporter's textfile collector,
reads them here; one elsewhere on the site network needs `metrics.token` (site.load_site
refuses an address other than loopback without one). stdlib `ThreadingHTTPServer`: one
page, a few requests a minute.

    server = MetricsServer(agent.render_metrics, host="127.0.0.1", port=9108).start()
    server.url            # http://127.0.0.1:9108/metrics
    server.stop()
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from edge_agent.errors import AgentError
from edge_agent.metrics.exposition import CONTENT_TYPE

log = logging.getLogger(__name__)


class MetricsServer:
    def __init__(self, render: Callable[[], str], *, host: str = "127.0.0.1", port: int = 9108,
                 token: str = "") -> None:
        self.render = render
        self.host = host
        self.port = port
        self.token = token
        self.requests = 0
        self.refused = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        handler = type("Handler", (_Handler,), {"metrics": self})
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), handler)
        except OSError as err:
            raise AgentError(f"metrics could not listen on {self.host}:{self.port}: {err.strerror or err}") from err
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="metrics", daemon=True)
        self._thread.start()
        log.info("metrics_started url=%s token=%s", self.url, "yes" if self.token else "no")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def allowed(self, authorization: str) -> bool:
        if not self.token:
            return True
        scheme, _, given = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())


class _Handler(BaseHTTPRequestHandler):
    metrics: MetricsServer
    server_version = "edge-agent-metrics"

    def do_GET(self) -> None:
        server = self.metrics
        if self.path.split("?", 1)[0].rstrip("/") != "/metrics":
            self._reply(404, "not found: GET /metrics\n", "text/plain; charset=utf-8")
            return
        if not server.allowed(self.headers.get("Authorization", "")):
            server.refused += 1
            log.warning("metrics_refused client=%s", self.client_address[0])
            self._reply(401, "a bearer token is required\n", "text/plain; charset=utf-8",
                        {"WWW-Authenticate": 'Bearer realm="edge-agent metrics"'})
            return
        server.requests += 1
        try:
            text = server.render()
        except Exception:  # noqa: BLE001 - a part in trouble must not take the page down with a traceback
            log.exception("metrics_render_failed")
            self._reply(500, "figures unavailable: see the agent's log\n", "text/plain; charset=utf-8")
            return
        self._reply(200, text, CONTENT_TYPE)

    def _reply(self, status: int, text: str, content_type: str, headers: dict[str, str] | None = None) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics_http " + format, *args)
