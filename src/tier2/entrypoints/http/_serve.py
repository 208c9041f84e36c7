"""Serving the app on uvicorn with tier2's limits on clients (`HttpLimits`).

uvicorn's own settings bound what they can: `limit_concurrency` (from that many open
connections on, a request is answered 503 and the connection closed), `timeout_keep_alive`
(an idle kept-alive connection is closed) and h11's `max_incomplete_event_size` (a request
line and headers larger than that are a 400). uvicorn has no deadline for a request's
headers, so the HTTP/1.1 protocol here adds one: a connection that has not sent a whole
request head within `header_timeout_seconds` of opening (or of its last response) is closed,
with a 408 when part of a request came. The body's deadline is the middleware's
(`BoundedBody`), as the body is read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from tier2.entrypoints.http._limits import HttpLimits

_HEADERS_LATE = b"the request headers were not in time"
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_HEADERS_LATE), _HEADERS_LATE)
)


class _HeadersDue(H11Protocol):
    """uvicorn's HTTP/1.1 (h11) protocol, with a deadline for each request's headers."""

    header_timeout: float = HttpLimits.header_timeout_seconds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._stop_waiting()
        self._headers_due = self.loop.call_later(self.header_timeout, self._headers_late)

    def _stop_waiting(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # a request is in (or the connection is going): nothing is late
        if self.conn.trailing_data[0]:  # part of a request came: say why it is closed
            self.transport.write(_TIMED_OUT)
        self.transport.close()


def _protocol(header_timeout: float) -> type[_HeadersDue]:
    class Protocol(_HeadersDue):
        pass

    Protocol.header_timeout = header_timeout
    return Protocol


def server(
    app: ASGIApp,
    limits: HttpLimits,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> uvicorn.Server:
    """A uvicorn server for the app, holding clients to `limits` (`.run()` serves it)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=_protocol(limits.header_timeout_seconds),
        ws="none",
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_seconds,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )
    return uvicorn.Server(config)
