"""What `tier2 serve` holds each client to, and the ASGI middleware that bounds request bodies.

The body is bounded before anything reads it: a declared `Content-Length` over the cap is a
413 at once, before routing or any token is looked at; a streamed (chunked) body is counted
as it is read and refused with a 413 the moment it passes the cap; a body that is not in
within the read deadline is refused with a 408. A response sent before its request's body
was read to the end closes the connection, so a client cannot keep trickling a body the
service has stopped listening to.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class HttpLimits:
    """The limits of `tier2 serve` (tier2.toml's [api], with the same defaults)."""

    max_body_bytes: int = 1_048_576  # a larger request body is refused (413)
    body_timeout_seconds: float = 30.0  # a body not in by then, from its headers, is a 408
    header_timeout_seconds: float = 10.0  # a request's headers not in by then: closed
    keep_alive_seconds: int = 5  # an idle kept-alive connection is closed after this
    max_connections: int = 100  # from this many open connections on, requests get a 503
    max_header_bytes: int = 16_384  # a larger request line and headers: 400


class _Refused(Exception):
    """The request is answered here, not by the app: its status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_CLOSE = (b"connection", b"close")


async def _answer(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                _CLOSE,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _declared_length(scope: Scope) -> int | _Refused | None:
    """The Content-Length (0 without a body; None: streamed, its length not known)."""
    headers = scope.get("headers", [])
    values = [v for k, v in headers if k.lower() == b"content-length"]
    if not values:
        streamed = any(k.lower() == b"transfer-encoding" for k, _ in headers)
        return None if streamed else 0
    if len(set(values)) > 1 or not values[0].strip().isdigit():
        return _Refused(400, "Content-Length is not one number")
    return int(values[0])


class _Request:
    """One request's body as the app reads it: counted, and read against its deadline."""

    def __init__(
        self, receive: Receive, send: Send, max_bytes: int, timeout: float, declared: int | None
    ) -> None:
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.deadline = anyio.current_time() + timeout
        self.read = 0
        self.body_done = declared == 0
        self.started = False

    async def receive(self) -> Message:
        if self.body_done or self.started:
            return await self._receive()
        with anyio.move_on_after(self.deadline - anyio.current_time()):
            message = await self._receive()
            if message["type"] == "http.request":
                self.read += len(message.get("body", b""))
                if self.read > self.max_bytes:
                    raise _Refused(413, _too_large(self.max_bytes))
                self.body_done = not message.get("more_body", False)
            return message
        raise _Refused(408, f"the request body was not in within {self.timeout:g} s")

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if not self.body_done:  # the rest of the body is not listened to: close after
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
        await self._send(message)


def _too_large(max_bytes: int) -> str:
    return f"the request body is larger than {max_bytes} bytes"


class BoundedBody:
    """ASGI middleware: request bodies of at most `max_bytes`, read within `timeout` seconds."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if isinstance(declared, _Refused):
            await _answer(send, declared.status, declared.message)
            return
        if declared is not None and declared > self.max_bytes:
            await _answer(send, 413, _too_large(self.max_bytes))
            return
        request = _Request(receive, send, self.max_bytes, self.timeout, declared)
        try:
            await self.app(scope, request.receive, request.send)
        except _Refused as refused:
            if request.started:
                raise
            await _answer(send, refused.status, refused.message)
