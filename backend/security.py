"""Security at the edge: response headers and a cross-site request check.

(Sign-in rate limiting needs the database: backend.auth.limiter.)

- Headers on every response: no MIME sniffing, no framing, no referrer to other sites (invitation links carry
  their token in the path, and the viewer must never leak it to another site), a strict Content
  Security Policy (scripts only from this origin), and HSTS in production.
- Cross-site requests: a state-changing request (POST, PUT, PATCH, DELETE) whose Origin (or,
  without one, Referer) names another site is refused with 403 before it reaches a route. This
  protects the cookie-authenticated forms and API calls on top of the cookies' SameSite flags;
  clients that send neither header (scripts, the CLI) are not browsers and cannot be tricked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class EdgeSecurity:
    """Pure ASGI middleware (streamed exports pass through untouched)."""

    def __init__(self, app: ASGIApp, *, public_url: str, production: bool, max_body: int):
        self.app = app
        self.max_body = max_body
        self.public_origin = _origin(public_url) if public_url else None
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"content-security-policy", CSP.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if production:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    def _own_origins(self, scope: Scope) -> set[str]:
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        own = {f"{scope.get('scheme', 'http')}://{host}"}
        if self.public_origin:
            own.add(self.public_origin)
        return own

    def _cross_site(self, scope: Scope) -> str | None:
        headers = dict(scope.get("headers") or [])
        claimed: bytes | None = headers.get(b"origin") or headers.get(b"referer")
        if not claimed:
            return None
        text = bytes(claimed).decode("latin-1")
        origin = "null" if text == "null" else _origin(text)
        if origin in self._own_origins(scope):
            return None
        return text

    async def _refuse(self, send: Send, status: int, message: str) -> None:
        body = json.dumps({"error": message, "detail": None}).encode()
        await send(
            {
                "type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *self.headers],
            }
        )  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if scope["method"] in UNSAFE:
            foreign = self._cross_site(scope)
            if foreign is not None:
                await self._refuse(send, 403, f"cross-site request refused (from {foreign[:200]})")
                return
        too_large = f"request body over {self.max_body:,} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._refuse(send, 413, too_large)
            return
        received = 0
        exceeded = False

        async def counted() -> Message:
            # Past the limit the app is told the body ended (it fails on what it got), and its
            # answer is replaced below by 413: how it handles a cut body does not matter.
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                exceeded = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        refused = False

        async def with_headers(message: Message) -> None:
            nonlocal refused
            if exceeded:
                if not refused:
                    refused = True
                    await self._refuse(send, 413, too_large)
                return
            if message["type"] == "http.response.start":
                existing = {k.lower() for k, _ in message.get("headers", [])}
                # How long the server took to start answering (waiting for a database slot
                # included): shown by browsers' developer tools, read by benchmarks/load.py.
                took = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message["headers"] = (
                    list(message.get("headers", []))
                    + [(k, v) for k, v in self.headers if k not in existing]
                    + [(b"server-timing", took)]
                )
            await send(message)

        await self.app(scope, counted, with_headers)
