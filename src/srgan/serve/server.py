"""Run the app with uvicorn on a socket bound here, so that port 0 (any free port)
works and the caller learns the address once the server is ready."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from srgan.serve.app import create_app
from srgan.serve.settings import ServeSettings

GRACEFUL_SHUTDOWN_S = 15


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()


def run_server(settings: ServeSettings, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready(url)` once requests are answered. On
    shutdown running jobs go back to the queue."""
    app = create_app(settings)
    sock = bind(settings.host, settings.port)
    config = uvicorn.Config(
        app,
        lifespan="on",
        access_log=settings.access_log,
        log_level="info" if settings.access_log else "warning",
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        h11_max_incomplete_event_size=64 * 1024,  # request line and headers
    )
    server = _Server(config, lambda: on_ready(url_of(sock)))
    server.run(sockets=[sock])
