"""`tier2 serve`: tier2 over HTTP (FastAPI). OpenAPI docs at /docs.

  POST /decide            decide a case posted in the contract's format, store nothing
  GET  /cases/{id}        a case's whole path (audit entries, decisions, actions, notes, SLA)
  POST /webhooks/zendesk  a signed Zendesk webhook: verified, queued durably, 202 at once
  POST /webhooks/rt       an RT scrip's call with the shared secret: queued durably, 202
  GET  /health            liveness, without a token
  /  (and /login, /cases, /case/{id}, /queue, /library, /static)
                          the web console, when one is given (tier2.entrypoints.http.console:
                          signed-in users, not bearer tokens; docs/console.md)

Everything but /health and the webhooks needs `Authorization: Bearer <token>`, one of the
tokens in the environment variable tier2.toml names (`[api] tokens_env`). Zendesk webhooks
are checked as Zendesk signs them, base64(HMAC-SHA256(secret, timestamp + body)), with the
timestamp no older than the tolerance; RT's carry `X-Tier2-Webhook-Secret`. A delivery is
queued once: the same signature (Zendesk) or delivery id (RT) again is refused as a replay.
Bad input gets the contract's error lines (which case, which field, what was wrong) with
status 422, never a traceback; a malformed webhook delivery (not JSON, no ticket, an id of
the wrong shape, a timestamp without an offset) is a 400.

Every request is held to `HttpLimits` (`_limits.BoundedBody`): a body over the cap is a 413
before anything reads it or looks at a token, a body too slow a 408. The webhooks look at
their secret or signature headers before they read the body.
"""

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    status,
)
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tier2 import __version__
from tier2.app.deciding import BAD_INPUT, DECIDED, decide_units
from tier2.contract import CaseError, Unit, read_units
from tier2.core.library import Library
from tier2.entrypoints.config import token_problem
from tier2.entrypoints.http._limits import BoundedBody, HttpLimits
from tier2.entrypoints.http.console import Console, mount_console
from tier2.store import models as m
from tier2.store.show import case_path

EXAMPLE_CASE: dict[str, Any] = {
    "case_id": "NW-1",
    "received_at": "2026-03-02T10:00:00+01:00",
    "ticket": {
        "id": "T-1",
        "created_at": "2026-03-02T09:00:00+01:00",
        "severity": "high",
        "category": "billing",
        "subject": "Charged twice",
    },
    "handoff": {
        "from": "tier1:ana",
        "reason": "Customer was charged twice for March",
        "steps_taken": [{"step": "verify_invoice", "result": "two charges of 240.00"}],
        "customer_expectation": "Refund of the duplicate charge",
        "request": {"type": "refund", "amount": 240.0, "currency": "EUR"},
    },
    "customer": {"id": "C-1", "plan": {"billing": "monthly", "monthly_fee": 240.0}},
    "facts": {"invoice": {"duplicate": True, "amount": 240.0}},
}


@dataclass(frozen=True)
class WebhookSecrets:
    zendesk: str | None = None
    rt: str | None = None
    tolerance_seconds: int = 300


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What Zendesk sends in X-Zendesk-Webhook-Signature."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _BadDelivery(ValueError):
    """A webhook delivery that is not what the help desk sends: answered 400, naming why."""


# A ticket or transaction id of RT or Zendesk: a positive integer, in JSON as a number or as
# its digits (so 12 and "12" are one ticket, and 12.0, true, "", "012" are none).
_DIGITS = re.compile(r"[1-9][0-9]{0,18}")
# Another delivery id (RT's delivery_id): letters, digits and . _ : -
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_SHOWN = 40


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _numeric_id(value: Any, field: str) -> str:
    """A ticket or transaction id as the digits it is stored under."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**19:
        return str(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return value
    raise _BadDelivery(
        f"{field}: must be a positive integer, as a number or its digits (got {_shown(value)})"
    )


def _delivery_id(value: Any, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return _numeric_id(value, field)
    if isinstance(value, str) and _TOKEN.fullmatch(value):
        return value
    raise _BadDelivery(
        f"{field}: must be a positive integer or up to 128 letters, digits and . _ : - "
        f"(got {_shown(value)})"
    )


def _delivery(raw: bytes) -> dict[str, Any]:
    """A delivery's body: a JSON object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _BadDelivery("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadDelivery(f"the body must be a JSON object, got {type(body).__name__}")
    return body


def _zendesk_ticket(body: dict[str, Any]) -> str:
    """The ticket of a trigger webhook ({"ticket_id": ...}) or an event ({"detail": {"id"}})."""
    if "ticket_id" in body:
        return _numeric_id(body["ticket_id"], "ticket_id")
    detail = body.get("detail")
    if isinstance(detail, dict) and "id" in detail:
        return _numeric_id(detail["id"], "detail.id")
    raise _BadDelivery("no ticket_id (or detail.id) in the body")


def _rt_delivery(body: dict[str, Any]) -> tuple[str, str]:
    """The ticket and the delivery of an RT scrip's call."""
    if "ticket_id" not in body:
        raise _BadDelivery("no ticket_id in the body")
    ticket_id = _numeric_id(body["ticket_id"], "ticket_id")
    if "transaction_id" in body:
        return ticket_id, _numeric_id(body["transaction_id"], "transaction_id")
    if "delivery_id" in body:
        return ticket_id, _delivery_id(body["delivery_id"], "delivery_id")
    raise _BadDelivery("no transaction_id (or delivery_id) in the body")


# base64 of an HMAC-SHA256 (32 bytes)
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{43}=")
_MAX_TIMESTAMP = 64


def _zendesk_headers(
    hooks: WebhookSecrets, signature: str | None, timestamp: str | None, now: datetime
) -> JSONResponse | None:
    """Why a Zendesk delivery is refused on its headers alone, before its body is read (None:
    they are as Zendesk sends them): both present, a signature's shape, a timestamp with an
    offset (400 without), signed within the tolerance."""
    if not signature or not timestamp:
        return JSONResponse({"error": "unsigned: the signature headers are missing"}, 401)
    if not _SIGNATURE.fullmatch(signature):
        return JSONResponse({"error": "the signature is not a base64 HMAC-SHA256"}, 401)
    try:
        if len(timestamp) > _MAX_TIMESTAMP:
            raise ValueError
        signed_at = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return JSONResponse(
            {"error": f"X-Zendesk-Webhook-Signature-Timestamp {_shown(timestamp)} is not "
                      "an ISO-8601 time"},
            400,
        )  # fmt: skip
    if signed_at.tzinfo is None:
        return JSONResponse(
            {"error": f"X-Zendesk-Webhook-Signature-Timestamp {_shown(timestamp)} has no "
                      "offset (Zendesk sends UTC, like 2026-11-24T12:00:00Z)"},
            400,
        )  # fmt: skip
    age = (now - signed_at).total_seconds()
    if not -60 <= age <= hooks.tolerance_seconds:
        return JSONResponse(
            {"error": f"signed {age:.0f} s ago, outside {hooks.tolerance_seconds} s"}, 401
        )
    return None


@dataclass(frozen=True)
class Service:
    """What the routes work with: one library, one store, the accepted tokens and secrets."""

    library: Library
    engine: Engine
    tokens: tuple[bytes, ...]
    hooks: WebhookSecrets
    clock: Callable[[], datetime]
    on_delivery: Callable[[], None] | None

    def queue(self, source: str, key: str, ticket_id: str, body: Any) -> JSONResponse:
        """A webhook delivery stored durably once (202); the same key again is a replay (409)."""
        try:
            with Session(self.engine) as session, session.begin():
                row = m.WebhookDelivery(
                    source=source, delivery_key=key, ticket_id=ticket_id,
                    received_at=self.clock(),
                    body=body if isinstance(body, dict) else {"body": body},
                )  # fmt: skip
                session.add(row)
                session.flush()
                queued = row.id
            if self.on_delivery is not None:
                self.on_delivery()
        except IntegrityError:
            return JSONResponse(
                {"error": "this delivery was received before (a replay): not queued again"},
                status_code=409,
            )
        return JSONResponse({"queued": queued, "ticket_id": ticket_id}, status_code=202)


def _service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


ServiceDep = Annotated[Service, Depends(_service)]
_bearer = HTTPBearer(auto_error=False)


def _authorised(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    given = (credentials.credentials if credentials else "").encode()
    if not any(hmac.compare_digest(given, t) for t in service.tokens):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is needed",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter()


@router.get("/health", tags=["service"])
def health(service: ServiceDep) -> dict[str, str]:
    """Liveness: the library loaded and the service answers."""
    return {"status": "ok", "library": f"{service.library.name} {service.library.version}"}


_DECIDE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "object", "description": "one case"},
                    {"type": "array", "items": {"type": "object"}, "description": "cases"},
                ]
            },
            "example": EXAMPLE_CASE,
        },
        "application/x-ndjson": {"schema": {"type": "string", "description": "JSON Lines"}},
    },
}


def _decided(
    library: Library, units: list[Unit], whole: list[CaseError], now: datetime | None, one: bool
) -> Response:
    """The response to /decide: what `tier2 decide` writes for the same input."""
    verdicts = decide_units(library, units, now)
    errors = [line for e in whole for line in e.lines()]
    decisions: list[bytes] = []
    for state, written in verdicts:
        if state == DECIDED:
            decisions.append(written.rstrip(b"\n"))
        else:
            errors.extend(written.decode().splitlines())
    if not errors:
        if one:
            return Response(decisions[0], media_type="application/json")
        return Response(b"".join(d + b"\n" for d in decisions), media_type="application/x-ndjson")
    bad = bool(whole) or any(state == BAD_INPUT for state, _ in verdicts)
    code = 422 if bad else 500  # else: the library failed on a case (NOT_DECIDED)
    body = b'{"errors":%s,"decisions":[%s]}' % (orjson.dumps(errors), b",".join(decisions))
    return Response(body, status_code=code, media_type="application/json")


@router.post(
    "/decide", tags=["decisions"], dependencies=[Depends(_authorised)],
    openapi_extra={"requestBody": _DECIDE_BODY},
    responses={422: {"description": "bad input: the contract's error lines, and the "
                                    "decisions of the good cases of a batch"}},
)  # fmt: skip
async def decide_case(
    service: ServiceDep,
    request: Request,
    now: Annotated[
        str | None,
        Query(description="The clock (ISO-8601 with an offset); default: each received_at."),
    ] = None,
) -> Response:
    """Decide one case in the contract's format, or a JSON array or JSON Lines of cases;
    nothing is stored. The decisions are the contract's, byte for byte what `tier2 decide`
    prints: one case gives its decision, several give one decision per line. Bad input is a
    422 with the contract's error lines (`case <id>: <field path>: <what was wrong>`), and
    the decisions of the good cases of the batch."""
    clock = None
    if now is not None:
        try:
            clock = datetime.fromisoformat(now)
        except ValueError:
            return _errors([f"now: not an ISO-8601 time: {_shown(now)}"])
        if clock.tzinfo is None:
            return _errors([f"now: needs an offset, like {now}+00:00"])
    raw = await request.body()
    units: list[Unit] = []
    whole: list[CaseError] = []
    for unit in read_units(raw):
        if isinstance(unit, CaseError):
            whole.append(unit)
        else:
            units.append(unit)
    one = len(units) == 1 and units[0][0] == "item 1" and raw.lstrip()[:1] == b"{"
    return await run_in_threadpool(_decided, service.library, units, whole, clock, one)


def _errors(lines: list[str]) -> JSONResponse:
    return JSONResponse({"errors": lines, "decisions": []}, status_code=422)


@router.get("/cases/{case_id}", tags=["cases"], dependencies=[Depends(_authorised)])
def get_case(service: ServiceDep, case_id: str) -> dict[str, Any]:
    """A case's whole path: every audit entry, decision (with its stages), action, note
    and SLA escalation."""
    with Session(service.engine) as session:
        found = case_path(session, case_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
    return found


@router.post("/webhooks/zendesk", tags=["webhooks"], status_code=202)
async def zendesk_webhook(
    service: ServiceDep,
    request: Request,
    signature: Annotated[str | None, Header(alias="X-Zendesk-Webhook-Signature")] = None,
    timestamp: Annotated[str | None, Header(alias="X-Zendesk-Webhook-Signature-Timestamp")] = None,
) -> JSONResponse:
    """A Zendesk webhook (trigger or event subscription): verified and queued. The signature
    headers are checked before the body is read."""
    hooks = service.hooks
    if not hooks.zendesk:
        return JSONResponse({"error": "no Zendesk webhook secret configured"}, 503)
    refused = _zendesk_headers(hooks, signature, timestamp, service.clock())
    if refused is not None:
        return refused
    assert signature is not None and timestamp is not None
    raw = await request.body()
    expected = zendesk_signature(hooks.zendesk, timestamp, raw)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return JSONResponse({"error": "the signature does not match the body"}, 401)
    try:
        body = _delivery(raw)
        ticket_id = _zendesk_ticket(body)
    except _BadDelivery as exc:
        return JSONResponse({"error": str(exc)}, 400)
    key = f"zendesk:{signature}"
    return await run_in_threadpool(service.queue, "zendesk", key, ticket_id, body)


@router.post("/webhooks/rt", tags=["webhooks"], status_code=202)
async def rt_webhook(
    service: ServiceDep,
    request: Request,
    secret: Annotated[str | None, Header(alias="X-Tier2-Webhook-Secret")] = None,
) -> JSONResponse:
    """An RT scrip tells tier2 a ticket changed: {"ticket_id": 12, "transaction_id": 345}.
    The secret is checked before the body is read."""
    expected = service.hooks.rt
    if not expected:
        return JSONResponse({"error": "no RT webhook secret configured"}, 503)
    if not secret or not hmac.compare_digest(secret.encode(), expected.encode()):
        return JSONResponse({"error": "wrong or missing X-Tier2-Webhook-Secret"}, 401)
    try:
        body = _delivery(await request.body())
        ticket_id, delivery = _rt_delivery(body)
    except _BadDelivery as exc:
        return JSONResponse({"error": str(exc)}, 400)
    key = f"rt:{ticket_id}:{delivery}"
    return await run_in_threadpool(service.queue, "rt", key, ticket_id, body)


def create_app(
    library: Library,
    engine: Engine,
    tokens: Sequence[str],
    *,
    webhooks: WebhookSecrets | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_delivery: Callable[[], None] | None = None,
    limits: HttpLimits | None = None,
    docs: bool = True,
    console: Console | None = None,
) -> FastAPI:
    """The service for one library and one store; `tokens` are the accepted bearer tokens
    (each at least MIN_TOKEN_LENGTH characters); `on_delivery` is told when a webhook delivery
    has been queued (it wakes the worker); `limits` bound each request's body (the server's
    own limits are `server`'s); `docs=False` serves no /docs, /redoc or /openapi.json;
    `console`: the web console, served at / (tier2.entrypoints.http.console)."""
    problem = token_problem(tokens)
    if problem == "no token":
        raise ValueError("no API tokens: the service refuses to run open")
    if problem is not None:
        raise ValueError(f"API tokens: {problem}")
    limits = limits or HttpLimits()
    app = FastAPI(
        title="tier2",
        version=__version__,
        description="Owns escalated support cases: decides them with a policy library, "
        f"explains why, and documents every step. Library: {library.name} {library.version}.",
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.service = Service(
        library, engine, tuple(t.encode() for t in tokens), webhooks or WebhookSecrets(),
        clock, on_delivery,
    )  # fmt: skip
    app.include_router(router)
    if console is not None:
        mount_console(app, console)
    app.add_middleware(
        BoundedBody, max_bytes=limits.max_body_bytes, timeout=limits.body_timeout_seconds
    )
    return app
