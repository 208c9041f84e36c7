"""tier2 serve's edge, served for real (uvicorn on a loopback port, raw sockets): bodies capped
before they are read or a token is looked at, deadlines for slow headers and slow bodies, a
connection limit, and the start refused on weak or empty tokens.

Every socket read and write has a timeout, and so has every process; a deadline under test
is short (half a second), and the test waits for the server's answer, never a fixed time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import SAAS_BASE
from tests.fakes.served import ServedApp
from tier2.contract import CaseError, decision_json, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.entrypoints.http import HttpLimits, WebhookSecrets, create_app, server
from tier2.library.loader import load_library
from tier2.store.db import make_engine, upgrade

TOKEN = "edge-token-0123456789abcdef"
CAP = 4096
LIMITS = HttpLimits(
    max_body_bytes=CAP,
    body_timeout_seconds=0.5,
    header_timeout_seconds=0.5,
    keep_alive_seconds=30,
    max_connections=3,
)


@pytest.fixture
def served(tmp_path: Path, saas: Library) -> Iterator[ServedApp]:
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    upgrade(url)
    app = create_app(
        saas, make_engine(url), [TOKEN],
        webhooks=WebhookSecrets(zendesk="zendesk-signing-secret", rt="rt-shared-secret"),
        limits=LIMITS,
    )  # fmt: skip
    with ServedApp(app, LIMITS) as running:
        yield running


def read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response: its status, headers (lower-case names) and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise AssertionError(f"the connection closed without a whole response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_by_server(conn: socket.socket) -> bool:
    """Whether the server closes the connection (before the socket's timeout)."""
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def request_head(path: str, *headers: str) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: tier2", *headers]) + "\r\n\r\n").encode()


def test_a_declared_body_over_the_cap_is_refused_at_once_before_the_token(
    served: ServedApp,
) -> None:
    """A Content-Length over the cap, without a token and with no byte of the body sent: 413
    at once (not 401, not a wait for the body), and the connection is closed."""
    with served.connect() as conn:
        conn.sendall(request_head("/decide", "Content-Length: 209715200"))
        status, headers, body = read_response(conn)
        assert status == 413 and headers["connection"] == "close"
        assert b"larger than 4096 bytes" in body
        assert closed_by_server(conn)


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_cap(served: ServedApp) -> None:
    """A chunked body is counted as it is read: past the cap, 413, though it never ended."""
    with served.connect() as conn:
        conn.sendall(
            request_head("/decide", f"Authorization: Bearer {TOKEN}", "Transfer-Encoding: chunked")
        )
        chunk = b"%x\r\n%s\r\n" % (CAP // 2, b" " * (CAP // 2))
        conn.sendall(chunk * 3)  # past the cap, and no last chunk
        status, headers, body = read_response(conn)
        assert status == 413 and headers["connection"] == "close"
        assert b"larger than 4096 bytes" in body
        assert closed_by_server(conn)


@pytest.mark.parametrize("length", ["Content-Length: 1000", "Transfer-Encoding: chunked"])
def test_zendesk_looks_at_the_signature_headers_before_the_body(
    served: ServedApp, length: str
) -> None:
    """An unsigned Zendesk delivery is refused (401) before any of its body is sent."""
    with served.connect() as conn:
        conn.sendall(request_head("/webhooks/zendesk", length))
        status, headers, body = read_response(conn)
        assert status == 401 and b"signature headers are missing" in body
        assert headers["connection"] == "close"  # the body is not read: nor waited for
        assert closed_by_server(conn)


def test_a_slow_body_gets_a_408_at_the_read_deadline(served: ServedApp) -> None:
    """A body that does not come in within the deadline: 408, connection closed."""
    with served.connect() as conn:
        conn.sendall(
            request_head("/decide", f"Authorization: Bearer {TOKEN}", "Content-Length: 100") + b"{"
        )
        status, headers, body = read_response(conn)
        assert status == 408 and headers["connection"] == "close"
        assert b"not in within 0.5 s" in body
        assert closed_by_server(conn)


def test_a_slow_webhook_body_gets_a_408(served: ServedApp) -> None:
    """The same deadline holds for a webhook whose secret was right."""
    with served.connect() as conn:
        conn.sendall(
            request_head(
                "/webhooks/rt", "X-Tier2-Webhook-Secret: rt-shared-secret", "Content-Length: 50"
            )
            + b'{"ticket_id"'
        )
        status, _, _ = read_response(conn)
        assert status == 408
        assert closed_by_server(conn)


def test_slow_headers_are_cut_off(served: ServedApp) -> None:
    """A request whose headers do not all come in time gets a 408 and is closed; so is a
    connection that sends nothing."""
    with served.connect() as conn:
        conn.sendall(b"POST /decide HTTP/1.1\r\nHost: tier2\r\n")  # and never the blank line
        status, _, body = read_response(conn)
        assert status == 408 and b"headers were not in time" in body
        assert closed_by_server(conn)
    with served.connect() as idle:
        assert closed_by_server(idle)


def test_an_answer_before_the_body_is_read_closes_the_connection(served: ServedApp) -> None:
    """A request refused (401) before its body was read is answered and closed, so the client
    cannot keep trickling a body nobody reads."""
    with served.connect() as conn:
        conn.sendall(request_head("/decide", "Content-Length: 1000") + b"{" * 10)
        status, headers, _ = read_response(conn)
        assert status == 401 and headers["connection"] == "close"
        assert closed_by_server(conn)


def test_bodiless_requests_keep_their_connection(served: ServedApp) -> None:
    """GETs on one kept-alive connection are answered one after the other."""
    with served.connect() as conn:
        for _ in range(2):
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: tier2\r\n\r\n")
            status, headers, _ = read_response(conn)
            assert status == 200 and headers.get("connection") != "close"


def test_a_case_is_decided_over_a_real_connection(served: ServedApp) -> None:
    """Within the limits a case is decided, byte for byte as `tier2 decide` decides it."""
    case = orjson.dumps(SAAS_BASE)
    with served.connect() as conn:
        conn.sendall(
            request_head(
                "/decide", f"Authorization: Bearer {TOKEN}", f"Content-Length: {len(case)}"
            )
            + case
        )
        status, _, body = read_response(conn)
    expected = parse_case(SAAS_BASE, "x")
    assert not isinstance(expected, CaseError)
    assert status == 200 and body == decision_json(decide(expected, load_library("saas")))


def test_beyond_the_connection_limit_requests_get_503(served: ServedApp) -> None:
    """With max_connections open, a request on one more is answered 503 and closed."""
    held = [served.connect() for _ in range(LIMITS.max_connections - 1)]
    try:
        for conn in held:  # each is open at the server: it has answered on it
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: tier2\r\n\r\n")
            assert read_response(conn)[0] == 200
        with served.connect() as extra:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: tier2\r\n\r\n")
            status, headers, _ = read_response(extra)
            assert status == 503 and headers["connection"] == "close"
    finally:
        for conn in held:
            conn.close()


def test_the_server_takes_uvicorns_limits_from_the_settings(saas: Library, tmp_path: Path) -> None:
    """limit_concurrency, timeout_keep_alive and h11's header size come from HttpLimits."""
    app = create_app(saas, make_engine(f"sqlite:///{tmp_path / 'x.db'}"), [TOKEN])
    limits = HttpLimits(max_connections=7, keep_alive_seconds=3, max_header_bytes=8192)
    config = server(app, limits).config
    assert (config.limit_concurrency, config.timeout_keep_alive) == (7, 3)
    assert config.h11_max_incomplete_event_size == 8192


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (",", "tier2: API tokens: TIER2_API_TOKENS: token 1 is empty"),
        ("short-token", "tier2: API tokens: TIER2_API_TOKENS: token 1 is shorter than 20 characters"),
        (f"{TOKEN},,{TOKEN}", "tier2: API tokens: TIER2_API_TOKENS: token 2 is empty"),
    ],
)  # fmt: skip
def test_serve_refuses_weak_or_empty_tokens_in_one_line(
    tmp_path: Path, tokens: str, message: str
) -> None:
    """`tier2 serve` with an empty entry or a short token: one line naming it, exit 2."""
    env = {**os.environ, "TIER2_API_TOKENS": tokens}
    done = subprocess.run(
        [sys.executable, "-m", "tier2", "serve", "--port", "0"],
        cwd=tmp_path, env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), lines
    assert "short-token" not in done.stderr.decode()  # a token is never shown
