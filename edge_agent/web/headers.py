"""The security headers on every console response (OWASP HTTP Headers Cheat Sheet).

The pages load one script and one stylesheet from /static and nothing inline (the live
panels arrive as HTML from the console's own event streams and hold no script), so the
Content-Security-Policy allows only the console's own origin and no inline code at all:
an injected `<script>` or `onclick=` in a plate text or a reason would not run. The
console is never framed (frame-ancestors 'none', and X-Frame-Options for browsers that
predate CSP 2), content types are not sniffed, and no Referer leaves the site, since
console URLs name lanes and crossings.

    app = SecurityHeaders(app)   # an ASGI wrapper; create_app applies it
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",  # the live panels' EventSource
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Sets HEADERS on every HTTP response, streams included (a plain ASGI wrapper, which
    unlike Starlette's BaseHTTPMiddleware does not buffer the live event streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
