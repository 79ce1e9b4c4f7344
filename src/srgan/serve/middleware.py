"""ASGI middleware: request metrics and security headers (outermost, so that it sees
every answer, errors included), the body limit, the API gate (keys and rate limits,
before any body is read) and the request timeout. Every answer they make themselves is
JSON `{"detail": ...}`, like the routes' errors."""

from __future__ import annotations

import json
import logging
import time

import anyio
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from srgan.serve.auth import Gatekeeper, Refused
from srgan.serve.metrics import Metrics

log = logging.getLogger(__name__)

_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# The page's own policy: everything from this server, images also from blob: URLs.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def send_json_error(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers.extend(
        (name.lower().encode(), value.encode()) for name, value in (headers or {}).items()
    )
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class ObserveRequests:
    """Counts every HTTP answer by route template, method and status, times it, and adds
    the security headers (the page's content security policy on the page's paths). An
    exception that escapes the app before it answered becomes a JSON 500 here, so that
    uvicorn's own text/plain one is never sent."""

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
        is_page = path in ("/", "/compare") or path.startswith("/static/")

        response_started = False

        async def observed_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
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
        except Exception:
            log.exception("unhandled error answering %s %s", scope.get("method"), path)
            if not response_started:
                await send_json_error(observed_send, 500, "internal server error")
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
            await send_json_error(send, 504, f"request timed out after {self.timeout_s:g} s")


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


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body without a (believable) length grows past the
    limit: an HTTPException, so that FastAPI answers it with the JSON error handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over this server's limit of {limit:,} bytes")


class RequestLimits:
    """Refuses HTTP versions other than 1.0 and 1.1 (505), request heads over
    `max_head_bytes` (431) and bodies over `max_body_bytes` (413), with JSON. A body is
    refused at once when its Content-Length says so, before the app sees the request;
    else while it is read. (The HTTP parser refuses a longer head only while it is
    incomplete: one that arrives in a single read gets here.)"""

    def __init__(self, app: ASGIApp, max_head_bytes: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_head_bytes = max_head_bytes
        self.max_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("http_version") not in ("1.0", "1.1"):  # the parser takes any X.Y
            await send_json_error(send, 505, "this server speaks HTTP/1.0 and HTTP/1.1 only")
            return
        head = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if head + len(scope.get("raw_path") or b"") > self.max_head_bytes:
            detail = f"request headers over this server's limit of {self.max_head_bytes:,} bytes"
            await send_json_error(send, 431, detail)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_json_error(send, 413, BodyTooLarge(self.max_bytes).detail)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge as too_large:  # read outside a route: answered here
            if response_started:
                raise
            await send_json_error(send, 413, too_large.detail)
