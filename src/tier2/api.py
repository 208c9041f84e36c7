"""`tier2 serve`: tier2 over HTTP (FastAPI). OpenAPI docs at /docs.

  POST /decide        decide a case posted in the contract's format, store nothing
  GET  /cases/{id}    a case's whole path (audit entries, decisions, actions, notes, SLA)
  GET  /health        liveness, without a token

Everything but /health needs `Authorization: Bearer <token>`, one of the tokens in the
environment variable tier2.toml names (`[api] tokens_env`). Bad input gets the contract's
error lines (which case, which field, what was wrong) with status 422, never a traceback.
"""

import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tier2 import __version__
from tier2.contract import CaseError, decision_json, parse_case
from tier2.core import decide
from tier2.core.library import Library
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


def create_app(library: Library, engine: Engine, tokens: Sequence[str]) -> FastAPI:
    """The service for one library and one store; `tokens` are the accepted bearer tokens."""
    if not tokens:
        raise ValueError("no API tokens: the service refuses to run open")
    accepted = [t.encode() for t in tokens]
    bearer = HTTPBearer(auto_error=False)

    def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = (credentials.credentials if credentials else "").encode()
        if not any(hmac.compare_digest(given, t) for t in accepted):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid bearer token is needed",
                headers={"WWW-Authenticate": "Bearer"},
            )

    app = FastAPI(
        title="tier2",
        version=__version__,
        description="Owns escalated support cases: decides them with a policy library, "
        f"explains why, and documents every step. Library: {library.name} {library.version}.",
    )

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: the library loaded and the service answers."""
        return {"status": "ok", "library": f"{library.name} {library.version}"}

    @app.post("/decide", tags=["decisions"], dependencies=[Depends(authorised)])
    def decide_case(
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
        decision = decide(parsed, library, now)
        return Response(decision_json(decision), media_type="application/json")

    @app.get("/cases/{case_id}", tags=["cases"], dependencies=[Depends(authorised)])
    def get_case(case_id: str) -> dict[str, Any]:
        """A case's whole path: every audit entry, decision (with its stages), action, note
        and SLA escalation."""
        with Session(engine) as session:
            found = case_path(session, case_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
        return found

    return app
