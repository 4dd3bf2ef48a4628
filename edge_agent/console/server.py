"""Serving the console: uvicorn in a thread of the agent's process.

The console reads the core's live lane state in memory, so it runs in the agent's
process, not as a separate service. uvicorn's signal handling is left to the agent
(it installs its handlers only in the main thread anyway).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from typing import Any

from edge_agent.config import ConsoleConfig
from edge_agent.errors import ConsoleError

log = logging.getLogger(__name__)


class ConsoleHandle:
    """A running console: its URL, the app (accounts, audit log) and `stop()`."""

    def __init__(self, server: Any, thread: threading.Thread, app: Any, url: str) -> None:
        self.server = server
        self.thread = thread
        self.app = app
        self.url = url

    @property
    def console(self) -> Any:
        return self.app.state.console

    def stop(self, timeout_s: float = 10.0) -> None:
        self.console.closing.set()  # ends the live streams, so uvicorn can finish
        self.server.should_exit = True
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout_s)
        self.console.close()
        log.info("console_stopped url=%s", self.url)


def start_console(agent: Any, config: ConsoleConfig | None = None, startup_timeout_s: float = 15.0) -> ConsoleHandle:
    """Serve the console until `stop()` (the core handles what it posts: edge_agent.core)."""
    import uvicorn

    from edge_agent.console.app import create_app

    config = config or agent.config.console
    if config.tls_cert and config.tls_key:
        try:  # uvicorn loads them in its thread, where a bad file would only say "did not start"
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(config.tls_cert, config.tls_key)
        except (OSError, ssl.SSLError) as err:
            raise ConsoleError(f"the console's TLS certificate or key is unusable: {err}") from err
    # Bind here, in the caller's thread, so a taken port or a bad address is an error the
    # agent sees at start, not a traceback in the server's thread.
    try:
        sock = socket.create_server((config.host, config.port), family=_family(config.host), reuse_port=False)
    except OSError as err:
        raise ConsoleError(
            f"the console could not listen on {config.host}:{config.port}: {err.strerror or err}") from err
    app = create_app(agent, config)
    # proxy_headers off: uvicorn would believe X-Forwarded-For from loopback, where anyone
    # on the board (or a rotating header behind no proxy at all) could pick their address;
    # the console believes only console.trusted_proxies (forwarded.py).
    tls = {"ssl_certfile": str(config.tls_cert), "ssl_keyfile": str(config.tls_key)} if config.tls_cert else {}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2,
                                           access_log=False, proxy_headers=False, **tls))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="console", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            app.state.console.close()
            raise ConsoleError(f"the console did not start on {config.host}:{config.port}")
        time.sleep(0.02)
    host, port = sock.getsockname()[:2]
    scheme = "https" if config.tls_cert else "http"
    url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    log.info("console_started url=%s", url)
    return ConsoleHandle(server, thread, app, url)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
