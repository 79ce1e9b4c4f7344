"""ASGI middleware: request metrics and security headers (outermost, so that it sees
every answer, errors included), the API gate (keys and rate limits, before any body is
read) and the request timeout."""

from __future__ import annotations

import json
import time

import anyio
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from srgan.serve.auth import Gatekeeper, Refused
from srgan.serve.metrics import Metrics

_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# The page's own policy: everything from this server, images also from blob: URLs.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class ObserveRequests:
    """Counts every HTTP answer by route template, method and status, times it, and adds
    the security headers (the page's content security policy on the page's paths)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        path = scope.get("path", "")
        is_page = path == "/" or path.startswith("/static/")

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.extend(_COMMON_HEADERS)
                if is_page:
                    headers.append((b"content-security-policy", PAGE_POLICY.encode()))
                    headers.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                template, scope.get("method", ""), status, time.perf_counter() - started
            )


class RequestTimeout:
    """Answers 504 when no response has started `timeout_s` after the request came in
    (a slow upload, or a long wait); a response that has started is not cut off."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        with anyio.CancelScope() as request_scope:

            async def watchdog() -> None:
                await anyio.sleep(self.timeout_s)
                if not response_started:
                    request_scope.cancel()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watchdog)
                await self.app(scope, receive, tracked_send)
                tasks.cancel_scope.cancel()
        if request_scope.cancelled_caught and not response_started:
            body = json.dumps({"detail": f"request timed out after {self.timeout_s:g} s"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 504,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})


class ApiGate:
    """Checks the API key and the rate limit of every /v1 request from its headers,
    before the body is read: a refused upload costs the server nothing. The admitted
    `Caller` is left in the request state for the routes."""

    def __init__(self, app: ASGIApp, gatekeeper: Gatekeeper, prefix: str = "/v1/") -> None:
        self.app = app
        self.gatekeeper = gatekeeper
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(self.prefix)
            or scope["method"] == "OPTIONS"  # CORS preflights carry no credentials
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key_text = token.strip() if scheme.lower() == "bearer" else headers.get("x-api-key")
        client = scope.get("client")
        address = client[0] if client else "-"
        try:
            # In a thread: the key lookup may wait on the database's lock.
            caller = await anyio.to_thread.run_sync(self.gatekeeper.admit, key_text, address)
        except Refused as refused:
            response = JSONResponse(
                {"detail": refused.detail}, refused.status, headers=refused.headers
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)
