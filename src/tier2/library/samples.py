"""Seeded generation of escalated cases in the contract's JSON shape.

Two modes:
- realistic: the mix a Head of Support sees (categories, handoff quality, histories, flags)
  for the library's company; used by the benchmark and the demo;
- exhaustive: every enumeration and every value the library's expressions test, near each
  boundary, uniformly; used by `tier2 lint` to find conflicts and unreachable policies.
The same seed gives the same cases.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from tier2.core.library import Library
from tier2.core.types import ListOf, MapOf, Record, Scalar, Type
from tier2.library.analysis import expression_sources, tested_values

CATEGORIES = ("billing", "refund", "access", "technical", "account", "contract", "order",
              "shipping", "product", "legal", "security", "compliance", "other")  # fmt: skip
REQUESTS = ("refund", "credit", "replacement", "reship", "access_restore", "contract_change",
            "information", "other")  # fmt: skip
SEVERITIES = ("critical", "high", "medium", "low")
CHANNELS = ("email", "chat", "phone", "web", "social", "review_site", "other")
SEGMENTS = ("enterprise", "mid_market", "smb", "consumer")
SENTIMENTS = ("calm", "neutral", "frustrated", "angry")

# Realistic mixes: category -> weight, and request type by category.
MIX: Mapping[str, Mapping[str, float]] = {
    "saas": {"billing": 30, "refund": 6, "access": 25, "technical": 20, "account": 8,
             "contract": 5, "legal": 2, "security": 2, "other": 2},
    "ecommerce": {"refund": 28, "shipping": 25, "order": 14, "product": 15, "billing": 10,
                  "access": 3, "other": 5},
    "retail": {"order": 55, "refund": 20, "shipping": 15, "product": 5, "other": 5},
}  # fmt: skip
REQUEST_MIX: Mapping[str, Mapping[str, float]] = {
    "billing": {"refund": 60, "credit": 20, "information": 12, "other": 8},
    "refund": {"refund": 85, "credit": 10, "other": 5},
    "access": {"access_restore": 60, "information": 35, "other": 5},
    "technical": {"other": 30, "information": 30, "credit": 30, "access_restore": 10},
    "account": {"information": 70, "contract_change": 15, "other": 15},
    "contract": {"contract_change": 80, "information": 20},
    "order": {"information": 70, "refund": 15, "other": 15},
    "shipping": {"reship": 40, "refund": 25, "information": 30, "other": 5},
    "product": {"replacement": 50, "refund": 45, "information": 5},
}
SEVERITY_MIX: Mapping[str, float] = {"critical": 4, "high": 18, "medium": 50, "low": 28}
CHANNEL_MIX: Mapping[str, float] = {
    "email": 50, "chat": 25, "phone": 10, "web": 10, "social": 3, "review_site": 2,
}  # fmt: skip
SEGMENT_MIX: Mapping[str, Mapping[str, float]] = {
    "ecommerce": {"consumer": 90, "smb": 10},
    "retail": {"consumer": 95, "smb": 5},
}
BUSINESS_SEGMENT_MIX: Mapping[str, float] = {  # a company without a mix of its own
    "enterprise": 10, "mid_market": 25, "smb": 55, "consumer": 10,
}  # fmt: skip
STEPS = {
    "billing": "verify_invoice",
    "refund": "verify_invoice",
    "access": "verify_identity",
    "shipping": "check_tracking",
}
BASE = datetime(2026, 3, 2, 8, 0, tzinfo=timezone(timedelta(hours=1)))
NAMES = ("Ada Brandt", "Lena Vogt", "Omar Haddad", "Mia Chen", "Jonas Berg", "Sara Lind",
         "Tom Avery", "Priya Nair", "Luca Romano", "Eva Novak")  # fmt: skip
FOLLOW_UPS = ("Any update?", "This is still not fixed.", "Please call me back.",
              "I will cancel if this is not sorted.", "We are considering legal action.",
              "Thanks for looking into it.")  # fmt: skip


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _iso(t: datetime) -> str:
    return t.isoformat()


class CaseGenerator:
    """Generates case i of a seeded stream, in the contract's JSON shape."""

    def __init__(self, library: Library, seed: int = 0, *, exhaustive: bool = False) -> None:
        self.library = library
        self.seed = seed
        self.exhaustive = exhaustive
        self.tested = tested_values(src for _, src in expression_sources(library))
        self.prefix = {"saas": "NW", "ecommerce": "HP"}.get(library.name, library.name[:2].upper())
        self.mix = MIX.get(library.name, dict.fromkeys(CATEGORIES, 1.0))
        self.segment_mix = SEGMENT_MIX.get(library.name, BUSINESS_SEGMENT_MIX)
        # the library's own request types, drawn uniformly (else the contract's, by the mix)
        own = library.request_types != REQUESTS
        self.requests = library.request_types
        self.request_mix = dict.fromkeys(library.request_types, 1.0) if own else None
        self.step_names = dict(STEPS)
        for category, steps in library.handoff.required_steps.items():
            if steps:
                self.step_names[category] = steps[0]

    def cases(self, n: int) -> list[dict[str, Any]]:
        return [self.case(i) for i in range(n)]

    # ------------------------------------------------------------------ one case

    def case(self, i: int) -> dict[str, Any]:
        """Case i of the stream. Every value comes from one generator seeded by (seed, library,
        i), drawn in the order written here: drawing in another order gives other cases."""
        rng = random.Random(f"{self.seed}:{self.library.name}:{i}")
        self._seen: list[tuple[str, str, str]] = []  # pooled strings drawn: (path, name, value)
        received = BASE + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
        category = self._draw(rng, CATEGORIES, self.mix)
        request_type = self._draw(
            rng,
            self.requests,
            self.request_mix or REQUEST_MIX.get(category, {"information": 1, "other": 1}),
        )
        created = received - timedelta(
            minutes=rng.choice((30, 239, 241, 600, 1800))
            if self.exhaustive
            else rng.randrange(20, 60 * 30)
        )
        severity = self._draw(rng, SEVERITIES, SEVERITY_MIX)
        channel = self._draw(rng, CHANNELS, CHANNEL_MIX)
        segment = self._draw(rng, SEGMENTS, self.segment_mix)
        currency = self.library.currency or "EUR"
        amount = self._amount(rng, request_type)
        name = rng.choice(NAMES)
        n = i + 1
        ticket_id = f"{self.prefix}{100000 + n}"  # unique across companies
        messages = self._thread(rng, category, created, received)
        handoff = self._handoff(
            rng,
            category=category,
            request_type=request_type,
            amount=amount,
            currency=currency,
            received=received,
            created=created,
        )
        customer = self._customer(
            rng, n, name, segment=segment, currency=currency, received=received
        )
        case = {
            "case_id": f"{self.prefix}-{n:06d}",
            "received_at": _iso(received),
            "ticket": {
                "id": ticket_id,
                "subject": f"{category.title()} issue",
                "description": self._opening(rng, category),
                "channel": channel,
                "created_at": _iso(created),
                "severity": severity,
                "category": category,
                "messages": messages,
                "tags": [category],
            },
            "handoff": handoff,
            "customer": customer,
            "history": self._history(rng, category, received, ticket_id),
            "facts": self._facts(rng, received, amount),
        }
        if self.library.request_fields:  # (drawn last: a library without them draws as before)
            handoff["request"].update(self._request_fields(rng, received, amount))
        return case

    def _request_fields(
        self, rng: random.Random, received: datetime, amount: float | None
    ) -> dict[str, Any]:
        """A value of its type for each request field the library declares (some absent);
        strings from the pool lists draw from, so the ids a request names are often the ids
        of the facts' lists."""
        out: dict[str, Any] = {}
        for name, kind in self.library.request_fields.items():
            if rng.random() < (0.1 if self.exhaustive else 0.05):
                continue
            pool = _Pool(distinct=rng.random() < 0.8)
            value = self._value(
                rng, kind, f"request.{name}", received=received, amount=amount, pool=pool
            )
            if value is not None:
                out[name] = max(0.0, value) if kind == Scalar("money") else value
        return out

    def _draw(self, rng: random.Random, values: Sequence[str], mix: Mapping[str, float]) -> str:
        """Any of the values, uniformly, when exhaustive; else one as often as the mix says."""
        return rng.choice(values) if self.exhaustive else _pick(rng, mix)

    def _thread(
        self, rng: random.Random, category: str, created: datetime, received: datetime
    ) -> list[dict[str, Any]]:
        """The customer's opening message; then, if tier-1 answered before the escalation,
        the agent's reply and the customer's follow-ups."""
        messages = [
            {"from": "customer", "at": _iso(created), "body": self._opening(rng, category)},
        ]
        first_agent = created + timedelta(minutes=rng.randrange(5, 90))
        if first_agent < received:
            messages.append({"from": "agent", "at": _iso(first_agent), "body": "Looking into it."})
            follow_ups = (
                rng.randrange(0, 5) if self.exhaustive else rng.choice((0, 0, 0, 1, 2, 3, 4))
            )
            for k in range(follow_ups):
                at = first_agent + (received - first_agent) * (k + 1) / 6
                if at < received:
                    messages.append(
                        {"from": "customer", "at": _iso(at), "body": rng.choice(FOLLOW_UPS)}
                    )
        return messages

    def _opening(self, rng: random.Random, category: str) -> str:
        extra = ""
        if rng.random() < (0.25 if self.exhaustive else 0.04):
            extra = " " + rng.choice(
                ("We may cancel our subscription.", "Our lawyer is asking about this.",
                 "This could be a GDPR issue.", "We will switch to another provider.")
            )  # fmt: skip
        return f"Customer reports a {category} problem that tier-1 could not close.{extra}"

    def _amount(self, rng: random.Random, request_type: str) -> float | None:
        if request_type not in ("refund", "credit", "replacement", "reship") and (
            request_type not in self.library.handoff.amount_required_for
        ):
            return None
        if self.exhaustive:
            pool = [10.0, 49.0, 240.0, 499.99, 500.0, 500.01, 4999.0, 5000.0, 5000.01,
                    24999.0, 25000.0, 25000.01, 60000.0]  # fmt: skip
            return rng.choice(pool)
        return round(min(30000.0, rng.lognormvariate(4.8, 1.1)), 2)

    def _handoff(
        self,
        rng: random.Random,
        *,
        category: str,
        request_type: str,
        amount: float | None,
        currency: str,
        received: datetime,
        created: datetime,
    ) -> dict[str, Any]:
        # Handoff quality varies: most are complete, some miss a part, a few skip a step.
        quality = rng.random()
        steps: list[dict[str, Any]] = []
        required = self.step_names.get(category)
        for_request = self.library.handoff.required_steps_by_request.get(request_type, ())
        if (required or for_request) and (quality > 0.06 or (self.exhaustive and quality > 0.3)):
            steps.extend(
                {"step": step, "result": "done", "at": _iso(created + (received - created) / 3)}
                for step in ([required] if required else []) + list(for_request)
            )
        steps.append(
            {
                "step": "reproduce_issue",
                "result": "confirmed",
                "at": _iso(created + (received - created) / 2),
            }
        )
        if quality < 0.03:
            steps = []
        handoff: dict[str, Any] = {
            "from": "support-agent",
            "escalated_at": _iso(received - timedelta(minutes=rng.randrange(1, 10))),
            "reason": "" if quality < 0.05 else "Needs tier-2 authority or judgement",
            "steps_taken": steps,
            "customer_expectation": None if 0.05 <= quality < 0.08 else "A fair resolution",
            "request": {"type": request_type, "currency": currency},
            "sentiment": rng.choice(SENTIMENTS),
        }
        if amount is not None and not (
            request_type in ("refund", "credit") and 0.08 <= quality < 0.1
        ):
            handoff["request"]["amount"] = amount
        return handoff

    def _customer(
        self,
        rng: random.Random,
        n: int,
        name: str,
        *,
        segment: str,
        currency: str,
        received: datetime,
    ) -> dict[str, Any]:
        ex = self.exhaustive
        flags = []
        for flag, p in (
            ("commercial_sensitivity", 0.04),
            ("churn_risk", 0.06),
            ("public_complaint", 0.02),
        ):
            if rng.random() < (0.2 if ex else p):
                note = f"{flag.replace('_', ' ')} noted by account team"
                flags.append({"type": flag, "note": note, "resolved": rng.random() < 0.3})
        customer: dict[str, Any] = {
            "id": "" if rng.random() < (0.1 if ex else 0.01) else f"{self.prefix}-C{10000 + n}",
            "name": name,
            "company": None
            if segment == "consumer"
            else f"{name.split()[1]} {rng.choice(('GmbH', 'Ltd', 'Inc'))}",
            "segment": segment,
            "vip": rng.random() < 0.05,
            "arr": rng.choice((1200.0, 9000.0, 50000.0, 50000.01, 120000.0))
            if ex
            else round(rng.lognormvariate(9.0, 1.2), 2),
            "currency": currency,
            "flags": flags,
        }
        plan = self._open_record(
            rng, self.library.plan.items(), "customer.plan", received=received, amount=None
        )
        if plan:
            customer["plan"] = plan
        return customer

    def _history(
        self, rng: random.Random, category: str, received: datetime, ticket_id: str
    ) -> list[dict[str, Any]]:
        ex = self.exhaustive
        count = rng.choice((0, 0, 1, 2, 3, 4, 5)) if ex else rng.choice((0, 0, 0, 1, 1, 2, 3, 5))
        out = []
        for k in range(count):
            age = rng.choice((10, 179, 180, 181, 364, 365, 366)) if ex else rng.randrange(5, 400)
            out.append(
                {
                    "ticket_id": str(90000 + k),
                    "at": _iso(received - timedelta(days=age)),
                    "category": category if rng.random() < 0.5 else rng.choice(CATEGORIES),
                    "complaint": rng.random() < (0.5 if ex else 0.2),
                    "escalated": rng.random() < (0.5 if ex else 0.15),
                    "outcome": "resolved",
                }
            )
        return out

    def _facts(
        self, rng: random.Random, received: datetime, amount: float | None
    ) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        for record, fields in self.library.facts.items():
            path = f"facts.{record}"
            if isinstance(fields, Record):
                if rng.random() < (0.1 if self.exhaustive else 0.15):
                    continue  # the record is absent
                facts[record] = self._open_record(
                    rng, fields.fields, path, received=received, amount=amount
                )
            else:
                value = self._value(rng, fields, path, received=received, amount=amount)
                if value is not None:
                    facts[record] = value
        return facts

    def _open_record(
        self,
        rng: random.Random,
        fields: Iterable[tuple[str, Type]],
        path: str,
        *,
        received: datetime,
        amount: float | None,
        pool: _Pool | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, kind in fields:
            value = self._value(
                rng, kind, f"{path}.{name}", received=received, amount=amount, pool=pool
            )
            if value is not None:
                out[name] = value
        return out

    def _value(
        self,
        rng: random.Random,
        kind: Type,
        path: str,
        *,
        received: datetime,
        amount: float | None,
        pool: _Pool | None = None,
    ) -> Any:
        """A value of the declared type at the path. `pool` (inside a list or a map) gives
        the strings no clause tests, shared across lists so ids in one match ids in another."""
        if isinstance(kind, Record):
            if pool is not None and rng.random() < 0.1:
                return None  # a nested record that is absent
            return self._open_record(
                rng, kind.fields, path, received=received, amount=amount, pool=pool
            )
        if isinstance(kind, ListOf | MapOf):
            return self._collection(rng, kind, path, received=received, amount=amount)
        tested = sorted(self.tested.get(path, set()), key=repr)
        if kind.name in ("number", "money"):
            return self._number(rng, kind.name, tested, path, amount)
        return self._scalar(rng, kind.name, tested, path, received, pool)

    def _collection(
        self,
        rng: random.Random,
        kind: ListOf | MapOf,
        path: str,
        *,
        received: datetime,
        amount: float | None,
    ) -> Any:
        """A list of 0 to 4 elements, the pooled strings of one list mostly different (as ids
        are); or a map of 0 to 4 keys: those the clauses read below it, and pooled ones."""
        if isinstance(kind, ListOf):
            pool = _Pool(distinct=rng.random() < 0.9)
            elements = (
                self._value(
                    rng, kind.item, f"{path}[]", received=received, amount=amount, pool=pool
                )
                for _ in range(rng.choice(LENGTHS))
            )
            return [value for value in elements if value is not None]
        below = {p[len(path) + 1 :].split(".")[0] for p in self.tested if p.startswith(path + ".")}
        keys = sorted(below) + [k for k in POOL if k not in below]
        pool = _Pool(distinct=False)
        out: dict[str, Any] = {}
        for key in rng.sample(keys, min(len(keys), rng.randrange(0, 5))):
            value = self._value(
                rng, kind.value, f"{path}.{key}", received=received, amount=amount, pool=pool
            )
            if value is not None:
                out[key] = value
        return out

    def _number(
        self, rng: random.Random, kind: str, tested: list[Any], path: str, amount: float | None
    ) -> float:
        numbers = [v for v in tested if isinstance(v, float)]
        if numbers and rng.random() < 0.5:
            return float(rng.choice(numbers))
        if kind == "money":
            return rng.randrange(0, 100000) / 100  # cents
        if path.endswith(("value", "amount", "fee")):
            if amount is not None and rng.random() < 0.5:
                return amount
            return rng.choice((19.0, 49.0, 120.0, 240.0, 480.0, 900.0, 2400.0, 7500.0))
        return float(rng.choice((0, 5, 20, 45, 61, 90, 180, 600)))

    def _pooled(self, rng: random.Random, path: str, pool: _Pool) -> str:
        """A pooled string; often one this case already holds in a field of the same name
        (`product_id`) or that the field's name refers to (`new_item_ids` -> `item_id`) in
        another list, so the ids a request names are ids of the facts, and lists pair up."""
        name = path.removesuffix("[]").rsplit(".", 1)[-1].removesuffix("s")
        known = [
            v
            for at, field, v in self._seen
            if at != path and name.endswith(field) and pool.free(path, v)
        ]
        value = rng.choice(known) if known and rng.random() < 0.6 else pool.draw(rng, path)
        pool.take(path, value)
        self._seen.append((path, name, value))
        return value

    def _scalar(  # noqa: PLR0917 (the generator's state, drawn in order)
        self,
        rng: random.Random,
        kind: str,
        tested: list[Any],
        path: str,
        received: datetime,
        pool: _Pool | None,
    ) -> Any:
        if kind == "bool":
            if self.exhaustive:
                return rng.choice((True, False, None))
            return rng.random() < 0.15 if rng.random() < 0.9 else None
        if kind == "timestamp":
            days = (
                rng.choice((-1.0, 0.0, 1.0, 29.99, 30.0, 30.01, 45.0, 400.0))
                if self.exhaustive
                else rng.choice((3.0, 12.0, 25.0, 29.0, 33.0, 40.0, 60.0, 200.0))
            )
            return _iso(received - timedelta(days=days))
        # strings: what the library tests for, and something else
        strings = [v for v in tested if isinstance(v, str)]
        if pool is not None:  # inside a list or a map
            if strings and rng.random() < 0.7:
                return rng.choice(strings)
            return self._pooled(rng, path, pool)
        if path.endswith(".id"):
            return f"{path.split('.')[-2][:3].upper()}-{rng.randrange(1000, 9999)}"
        if strings and rng.random() < 0.7:
            return rng.choice(strings)
        return rng.choice(("unknown", "pending", "in_transit", "delivered", "monthly", "annual"))


# The strings no clause tests, inside lists and maps: few, so an id in one list is often an
# id in another (a request's item ids, an order's lines), and a policy that pairs or looks up
# items is reachable.
POOL = ("A1", "A2", "A3", "A4", "A5")
# How many elements a generated list has: mostly one or two, so lists a policy pairs are often
# of the same length.
LENGTHS = (0, 1, 1, 1, 2, 2, 3, 4)


class _Pool:
    """The pooled strings of one list: with `distinct` (and always for an id field: `id`,
    `..._id`), each path's values differ from one element to the next (until the pool runs
    out), as ids in one list do."""

    def __init__(self, *, distinct: bool) -> None:
        self.distinct = distinct
        self.taken: dict[str, set[str]] = {}

    def _distinct(self, path: str) -> bool:
        return self.distinct or path.endswith(("_id", ".id"))

    def free(self, path: str, value: str) -> bool:
        """Whether the value may be drawn at the path (not yet, if values differ there)."""
        return not self._distinct(path) or value not in self.taken.get(path, ())

    def take(self, path: str, value: str) -> None:
        self.taken.setdefault(path, set()).add(value)

    def draw(self, rng: random.Random, path: str) -> str:
        """A pooled string (one not yet drawn at the path, if values differ there and any is
        left)."""
        if not self._distinct(path):
            return rng.choice(POOL)
        left = [v for v in POOL if v not in self.taken.get(path, ())]
        return rng.choice(left or POOL)
