"""Run the app with uvicorn on a socket bound here, so that port 0 (any free port)
works and the caller learns the address once the server is ready."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from srgan.serve.app import MAX_HEAD_BYTES, create_app
from srgan.serve.settings import ServeSettings

GRACEFUL_SHUTDOWN_S = 15


def bind(host: str, port: int) -> socket.socket:
    """The listening socket. It is made with IPPROTO_TCP, not the default protocol 0:
    asyncio sets TCP_NODELAY only on sockets whose `proto` says TCP, and accepted
    connections inherit it. Without it every answer written in two parts (headers,
    then body) waits for the client's delayed ACK, about 40 ms."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def raw_json_response(status: int, reason: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer with a JSON error body, for the connection level, where
    no ASGI response exists; the connection is closed after it."""
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
        "x-content-type-options: nosniff\r\n\r\n"
    )
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with two changes. Its own error answers (a request it
    cannot parse) are JSON `{"detail": ...}` like the app's. And a client the server is
    waiting on, outside a request the app is handling (a request head still coming, or
    an unread body trickling in after the answer), has `idle_timeout_s` in all: uvicorn
    alone would keep such a connection open for as long as a byte comes now and then."""

    idle_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._idle_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_on_client():
            self._arm_idle_timer()
        else:
            self._cancel_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_idle_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        detail = (
            "invalid HTTP request: the request line or headers could not be parsed "
            f"(at most {MAX_HEAD_BYTES // 1024} KiB of them)"
        )
        self.transport.write(raw_json_response(400, "Bad Request", detail))
        self.transport.close()

    def _waiting_on_client(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_idle_timer(self) -> None:
        if self._idle_timer is None and not self.transport.is_closing():
            self._idle_timer = self.loop.call_later(self.idle_timeout_s, self._idle_timed_out)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_timed_out(self) -> None:
        self._idle_timer = None
        if self.transport.is_closing() or not self._waiting_on_client():
            return
        partial_head = self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])
        if partial_head:
            detail = f"the request head did not arrive within {self.idle_timeout_s:g} s"
            self.transport.write(raw_json_response(408, "Request Timeout", detail))
        self.transport.close()


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()


def protocol_for(settings: ServeSettings) -> type[GuardedH11Protocol]:
    class Protocol(GuardedH11Protocol):
        idle_timeout_s = settings.header_timeout_s

    return Protocol


def run_server(settings: ServeSettings, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready(url)` once requests are answered. On
    shutdown running jobs go back to the queue."""
    app = create_app(settings)
    sock = bind(settings.host, settings.port)
    config = uvicorn.Config(
        app,
        http=protocol_for(settings),
        ws="none",  # the API has no WebSocket route: an upgrade is a plain request
        lifespan="on",
        access_log=settings.access_log,
        log_level="info" if settings.access_log else "warning",
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        forwarded_allow_ips=list(settings.trusted_proxies),
        proxy_headers=bool(settings.trusted_proxies),
    )
    server = _Server(config, lambda: on_ready(url_of(sock)))
    server.run(sockets=[sock])
