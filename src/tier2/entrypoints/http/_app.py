"""`tier2 serve`: tier2 over HTTP (FastAPI). OpenAPI docs at /docs.

  POST /decide            decide a case posted in the contract's format, store nothing
  GET  /cases/{id}        a case's whole path (audit entries, decisions, actions, notes, SLA)
  POST /webhooks/zendesk  a signed Zendesk webhook: verified, queued durably, 202 at once
  POST /webhooks/rt       an RT scrip's call with the shared secret: queued durably, 202
  GET  /health            liveness, without a token

Everything but /health and the webhooks needs `Authorization: Bearer <token>`, one of the
tokens in the environment variable tier2.toml names (`[api] tokens_env`). Zendesk webhooks
are checked as Zendesk signs them, base64(HMAC-SHA256(secret, timestamp + body)), with the
timestamp no older than the tolerance; RT's carry `X-Tier2-Webhook-Secret`. A delivery is
queued once: the same signature (Zendesk) or delivery id (RT) again is refused as a replay.
Bad input gets the contract's error lines (which case, which field, what was wrong) with
status 422, never a traceback.
"""

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import (
    APIRouter,
    Body,
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
from tier2.contract import CaseError, decision_json, parse_case
from tier2.core import decide
from tier2.core.library import Library
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


def _ticket_of(body: Any) -> str | None:
    """The ticket id in a trigger webhook ({"ticket_id": ...}) or an event ({"detail": {"id"}})."""
    if not isinstance(body, dict):
        return None
    found = body.get("ticket_id") or (body.get("detail") or {}).get("id")
    return None if found is None else str(found)


def _unsigned(
    hooks: WebhookSecrets, signature: str | None, timestamp: str | None, raw: bytes,
    now: datetime,
) -> str | None:  # fmt: skip
    """Why a Zendesk delivery is refused as not signed by Zendesk (None: it is): the
    signature must match the body and the timestamp be within the tolerance."""
    assert hooks.zendesk is not None
    if not signature or not timestamp:
        return "unsigned: the signature headers are missing"
    expected = zendesk_signature(hooks.zendesk, timestamp, raw)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return "the signature does not match the body"
    try:
        signed_at = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return f"timestamp {timestamp!r} is not ISO-8601"
    age = (now - signed_at).total_seconds()
    if signed_at.tzinfo is None or not -60 <= age <= hooks.tolerance_seconds:
        return f"signed {age:.0f} s ago, outside {hooks.tolerance_seconds} s"
    return None


def _json_with_ticket(raw: bytes, missing: str) -> tuple[Any, str] | JSONResponse:
    """A delivery's JSON body and the ticket it is about, or the 422 that says what's wrong."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "the body is not JSON"}, 422)
    ticket_id = _ticket_of(body)
    if ticket_id is None:
        return JSONResponse({"error": missing}, 422)
    return body, ticket_id


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


@router.post("/decide", tags=["decisions"], dependencies=[Depends(_authorised)])
def decide_case(
    service: ServiceDep,
    case: Annotated[dict[str, Any], Body(examples=[EXAMPLE_CASE])],
    now: Annotated[
        datetime | None,
        Query(description="The clock (ISO-8601 with an offset); default: received_at."),
    ] = None,
) -> Response:
    """Decide one case in the contract's format; nothing is stored. The decision is the
    contract's, byte for byte what `tier2 decide` prints."""
    if now is not None and now.tzinfo is None:
        return JSONResponse({"errors": ["now: needs an offset"]}, status_code=422)
    parsed = parse_case(case, "(body)")
    if isinstance(parsed, CaseError):
        return JSONResponse({"errors": parsed.lines()}, status_code=422)
    decision = decide(parsed, service.library, now)
    return Response(decision_json(decision), media_type="application/json")


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
    """A Zendesk webhook (trigger or event subscription): verified and queued."""
    hooks = service.hooks
    if not hooks.zendesk:
        return JSONResponse({"error": "no Zendesk webhook secret configured"}, 503)
    raw = await request.body()
    refused = _unsigned(hooks, signature, timestamp, raw, service.clock())
    if refused is not None:
        return JSONResponse({"error": refused}, 401)
    read = _json_with_ticket(raw, "no ticket_id (or detail.id) in the body")
    if isinstance(read, JSONResponse):
        return read
    body, ticket_id = read
    key = f"zendesk:{signature}"
    return await run_in_threadpool(service.queue, "zendesk", key, ticket_id, body)


@router.post("/webhooks/rt", tags=["webhooks"], status_code=202)
async def rt_webhook(
    service: ServiceDep,
    request: Request,
    secret: Annotated[str | None, Header(alias="X-Tier2-Webhook-Secret")] = None,
) -> JSONResponse:
    """An RT scrip tells tier2 a ticket changed: {"ticket_id": 12, "transaction_id": 345}."""
    expected = service.hooks.rt
    if not expected:
        return JSONResponse({"error": "no RT webhook secret configured"}, 503)
    if not secret or not hmac.compare_digest(secret.encode(), expected.encode()):
        return JSONResponse({"error": "wrong or missing X-Tier2-Webhook-Secret"}, 401)
    read = _json_with_ticket(await request.body(), "no ticket_id in the body")
    if isinstance(read, JSONResponse):
        return read
    body, ticket_id = read
    delivery = body.get("transaction_id") or body.get("delivery_id")
    if delivery is None:
        return JSONResponse({"error": "no transaction_id (or delivery_id) in the body"}, 422)
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
) -> FastAPI:
    """The service for one library and one store; `tokens` are the accepted bearer tokens;
    `on_delivery` is told when a webhook delivery has been queued (it wakes the worker)."""
    if not tokens:
        raise ValueError("no API tokens: the service refuses to run open")
    app = FastAPI(
        title="tier2",
        version=__version__,
        description="Owns escalated support cases: decides them with a policy library, "
        f"explains why, and documents every step. Library: {library.name} {library.version}.",
    )
    app.state.service = Service(
        library, engine, tuple(t.encode() for t in tokens), webhooks or WebhookSecrets(),
        clock, on_delivery,
    )  # fmt: skip
    app.include_router(router)
    return app
