"""The live panels over server-sent events (issue 16, item 1): the sites table and the hit
feed, pushed when the ledger changes instead of polled every few seconds.

One stream per panel (`/sites/events`, `/hits/events`). Each checks cheaply whether
anything changed (the newest stored event's position, and each site's status and health
times) every `poll_s`, and sends the panel's HTML as one `panel` event when it did (and
at least every `resend_s`, so that the ages it shows stay true); a comment line keeps
idle connections open through proxies. A user may hold `per_user` streams and the
console `total`; one more is refused (429) and the page falls back to polling
(static/rau.js). A stream ends when its session does (logout, a disabled user, expiry),
and at shutdown: `ClosingServer` tells every stream to end before uvicorn waits for its
connections, so open streams do not hold the stop until the graceful timeout.
Format: the HTML Living Standard, "Server-sent events" (9.2).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from edge_agent.central.console.pages import COOKIE, RauConsole, console_of, session_of
from edge_agent.central.console.views import _site_views
from edge_agent.central.ledger import Ledger

log = logging.getLogger(__name__)

POLL_S = 1.0
RESEND_S = 30.0
KEEPALIVE_S = 15.0
PER_USER = 4
TOTAL = 64


class LiveStreams:
    """How many streams are open, per user and in all, and the word to end them all."""

    def __init__(self, per_user: int = PER_USER, total: int = TOTAL, poll_s: float = POLL_S) -> None:
        self.per_user, self.total, self.poll_s = per_user, total, poll_s
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def take(self, user: str) -> bool:
        with self._lock:
            if self.stopping.is_set() or self._open[user] >= self.per_user or sum(self._open.values()) >= self.total:
                return False
            self._open[user] += 1
            return True

    def give_back(self, user: str) -> None:
        with self._lock:
            self._open[user] -= 1
            if self._open[user] <= 0:
                del self._open[user]

    def open_count(self) -> int:
        with self._lock:
            return sum(self._open.values())

    def stop(self) -> None:
        self.stopping.set()


def live_of(request: Request) -> LiveStreams:
    return request.app.state.live


def sse_event(name: str, text: str) -> bytes:
    """One event; every line of `text` a `data:` line (a line break inside data is allowed)."""
    lines = "".join(f"data: {line}\n" for line in text.replace("\r", "").split("\n"))
    return f"event: {name}\n{lines}\n".encode()


def sites_signature(ledger: Ledger) -> tuple[Any, ...]:
    """What changes when the sites table would: a new event, a status or a health report."""
    return ledger.max_rowid(), tuple((r["site"], r.get("state"), r.get("state_at"), r.get("health_at"))
                                     for r in ledger.sites())


def hits_signature(ledger: Ledger) -> tuple[Any, ...]:
    return (ledger.max_rowid(),)


async def stream(request: Request, panel: str, signature: Callable[[Ledger], tuple[Any, ...]],
                 render: Callable[[Ledger], str]) -> Response:
    console = console_of(request)
    session = session_of(request)
    if session is None:
        return Response("log in first", status_code=401)
    live = live_of(request)
    user = session.user.username
    if not live.take(user):
        console.counters["live:refused"] += 1
        log.warning("rau_console_live_refused user=%s panel=%s open=%d", user, panel, live.open_count())
        return Response("too many live panels open; the page polls instead", status_code=429)
    token = request.cookies.get(COOKIE)
    console.counters["live:opened"] += 1
    return StreamingResponse(_events(console, live, user, token, panel, signature, render),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(console: RauConsole, live: LiveStreams, user: str, token: str | None, panel: str,
                  signature: Callable[[Ledger], tuple[Any, ...]],
                  render: Callable[[Ledger], str]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    last: tuple[Any, ...] | None = None
    sent_at = kept_at = loop.time()
    why = "closing"
    try:
        yield b"retry: 5000\n\n"
        while True:
            if live.stopping.is_set() or console.closing.is_set():
                break
            if console.accounts.session(token) is None:
                why = "session_ended"
                break
            now = loop.time()
            current = await console.read(signature)
            if current != last or now - sent_at >= RESEND_S:
                html = await console.read(render)
                last, sent_at, kept_at = current, now, now
                yield sse_event("panel", html)
            elif now - kept_at >= KEEPALIVE_S:
                kept_at = now
                yield b": keep-alive\n\n"
            await _pause(live, console, live.poll_s)
        yield sse_event("closing", why)
    finally:
        live.give_back(user)
        log.info("rau_console_live_closed user=%s panel=%s why=%s", user, panel, why)


async def _pause(live: LiveStreams, console: RauConsole, seconds: float) -> None:
    """Sleep `seconds`, or less when the console is stopping."""
    end = asyncio.get_running_loop().time() + seconds
    while not (live.stopping.is_set() or console.closing.is_set()):
        left = end - asyncio.get_running_loop().time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.1))


async def sites_events(request: Request) -> Response:
    console = console_of(request)
    template = console.templates.get_template("_sites.html")
    return await stream(request, "sites", sites_signature,
                        lambda ledger: template.render(sites=_site_views(console, ledger)))


async def hits_events(request: Request) -> Response:
    template = console_of(request).templates.get_template("_hits.html")
    return await stream(request, "hits", hits_signature, lambda ledger: template.render(hits=ledger.recent_hits(50)))


class ClosingServer(uvicorn.Server):
    """uvicorn's server that ends the console's live streams first when it stops: a
    streaming response never finishes on its own, and uvicorn waits for every open
    response until its graceful timeout."""

    def __init__(self, config: uvicorn.Config, live: LiveStreams) -> None:
        super().__init__(config)
        self.live = live

    async def shutdown(self, sockets: Any = None) -> None:
        self.live.stop()
        await super().shutdown(sockets=sockets)
