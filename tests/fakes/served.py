"""Served on loopback for tests. `Served`: a fake, so tier2 processes a test starts can reach
it (each request becomes an `httpx.Request` for the fake's handler, one at a time).
`ServedApp`: tier2's own app, served by uvicorn as `tier2 serve` serves it, for what only a
real server and real sockets show (limits, slow clients)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tier2.entrypoints.http import HttpLimits


class Served:
    def __init__(self, handle: Callable[[httpx.Request], httpx.Response], host: str) -> None:
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                request = httpx.Request(
                    self.command,
                    f"https://{host}{self.path}",
                    headers=dict(self.headers.items()),
                    content=self.rfile.read(size) if size else b"",
                )
                with lock:
                    response = handle(request)
                body = response.read()
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Served:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


class ServedApp:
    """An ASGI app served for real, as `tier2 serve` serves it (uvicorn, with `limits`), in a
    thread on a loopback port; stopped on the way out. Every wait is bounded by `timeout`."""

    def __init__(self, app: Any, limits: HttpLimits, timeout: float = 10.0) -> None:
        from tier2.entrypoints.http import server  # only the tests that serve the app need it

        self.timeout = timeout
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self.port = self._socket.getsockname()[1]
        self.server = server(app, limits, log_level="warning")
        self.server.config.timeout_graceful_shutdown = 1
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.__exit__(None, None, None)
                raise RuntimeError("the app was not served in time")
            time.sleep(0.01)
        return self

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A client connection, each read and write bounded by `timeout` seconds."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = self.server.force_exit = True
        self._thread.join(self.timeout)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError("the served app did not stop in time")
