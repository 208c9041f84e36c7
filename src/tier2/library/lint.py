"""`tier2 lint`: check a policy library before any case is seen.

- likely conflicts: pairs of policies of equal precedence that both hold on some generated
  case and prescribe different outcomes, targets or actions (found by running the real
  matching over exhaustive generated cases, so what lint says is what `decide` does);
- clauses, amounts and definitions that cannot be evaluated on some generated case (a case
  with them goes to a human, see `library_error`);
- policies no generated case reaches;
- clauses comparing `request.type` with a type the library does not declare (never true).

Fields no case has, unknown functions and expressions beyond the size limits are load
errors, so a library with them does not get this far.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from tier2.contract import CaseError, Vocabulary, parse_case
from tier2.core.expressions import FAILED, Scope
from tier2.core.library import Library
from tier2.core.model import Outcome, action_head, describe_params
from tier2.core.stages import Failure, PolicyMatch, apply_policy, gather_context, receive
from tier2.library.analysis import case_paths, expression_sources, tested_values
from tier2.library.samples import CaseGenerator


@dataclass(frozen=True, slots=True)
class LintFinding:
    kind: str  # conflict | can_fail | unreachable | unknown_request_type
    subject: tuple[str, ...]
    detail: str
    count: int = 0
    example: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LintReport:
    library: str
    version: str
    digest: str
    policies: int
    samples: int
    seed: int
    findings: tuple[LintFinding, ...]
    matches: dict[str, int]
    examples: int = 0  # the library's own example cases, decided besides the generated ones

    def of(self, kind: str) -> list[LintFinding]:
        return [f for f in self.findings if f.kind == kind]


def _prescription(m: PolicyMatch) -> str:
    p = m.policy
    acts = ", ".join(
        action_head(a.type, a.amount, None).rstrip() + describe_params(a.params) for a in m.actions
    )
    if p.outcome is Outcome.ESCALATE:
        head = f"escalate to {p.escalate_to}"
    elif p.outcome is Outcome.RETURN_TO_TIER1:
        head = "return to tier-1"
    else:
        head = "resolve"
    return head + (f": {acts}" if acts else "")


_VIEW_TO_RAW = {"request": ("handoff", "request")}


def _raw_value(raw: dict[str, Any], path: str) -> Any:
    parts = path.split(".")
    node: Any = raw
    head = _VIEW_TO_RAW.get(parts[0])
    for part in (*head, *parts[1:]) if head else parts:
        if not isinstance(node, dict) or part not in node:
            return "(absent)"
        node = node[part]
    return node


def _example(
    library: Library, raw: dict[str, Any], a: PolicyMatch, b: PolicyMatch
) -> dict[str, Any]:
    paths: set[str] = set()
    for pol in (a.policy, b.policy):
        for e in (*pol.when, *pol.unless):
            paths |= case_paths(library, e.source)
    shown = {p: _raw_value(raw, p) for p in sorted(paths) if p not in ("received_at", "now")}
    return {"case_id": raw["case_id"], "received_at": raw["received_at"], **shown}


Pairs = dict[tuple[str, str], tuple[int, dict[str, Any], str, str]]
Failed = dict[tuple[str, str], tuple[int, dict[str, Any], str]]  # (owner, clause) -> count,
# first example, why


def lint_library(library: Library, samples: int = 20000, seed: int = 7) -> LintReport:
    """Likely conflicts, clauses that can fail and unreachable policies, over `samples`
    generated cases (seeded)."""
    matches, pairs, failed = _matches(library, samples, seed)
    findings = [
        *_conflicts(library, pairs),
        *(
            LintFinding(
                "can_fail",
                (owner, source),
                f"{owner}: `{source}` could not be evaluated on {n} of {samples} generated "
                f"cases (e.g. {why}); such a case goes to a human with reason library_error",
                count=n,
                example=example,
            )
            for (owner, source), (n, example, why) in failed.items()
        ),
        *(
            LintFinding(
                "unreachable",
                (p.id,),
                f"{p.id} ({p.citation}) matched none of {samples} generated cases"
                + (f" and {len(library.examples)} example cases" if library.examples else "")
                + ": its conditions may contradict each other or read fields no case has",
            )
            for p in library.policies
            if matches[p.id] == 0
        ),
        *_unknown_request_types(library),
    ]
    return LintReport(
        library=library.name,
        version=library.version,
        digest=library.digest,
        policies=len(library.policies),
        samples=samples,
        seed=seed,
        examples=len(library.examples),
        findings=tuple(findings),
        matches={p.id: matches[p.id] for p in library.policies},
    )


def _unknown_request_types(library: Library) -> list[LintFinding]:
    """Expressions comparing request.type with a word not among the library's request types
    (a case of that type is an input error, so the comparison never holds)."""
    out: list[LintFinding] = []
    for owner, source in expression_sources(library):
        named = tested_values([source]).get("request.type", set())
        unknown = sorted(v for v in named if isinstance(v, str) and v not in library.request_types)
        if unknown:
            out.append(
                LintFinding(
                    "unknown_request_type",
                    (owner, source),
                    f"{owner}: `{source}` names request type(s) {', '.join(map(repr, unknown))}, "
                    f"which the library does not declare (request.types: "
                    f"{', '.join(library.request_types)})",
                )
            )
    return out


def _matches(library: Library, samples: int, seed: int) -> tuple[Counter[str], Pairs, Failed]:
    """How many generated cases each policy matched; the pairs of equal precedence that
    matched together and prescribe differently (count, first example, prescriptions); and
    the clauses that could not be evaluated (count, first example, why)."""
    generator = CaseGenerator(library, seed, exhaustive=True)
    vocabulary = Vocabulary.of(library)
    matches: Counter[str] = Counter()
    pairs: Pairs = {}
    failed: Failed = {}
    examples = [(f"example {i + 1}", dict(raw)) for i, raw in enumerate(library.examples)]
    generated = ((f"generated {i}", generator.case(i)) for i in range(samples))
    for position, raw in itertools.chain(examples, generated):
        case = parse_case(raw, position, vocabulary)
        if isinstance(case, CaseError):  # the generator only makes valid cases
            raise AssertionError("; ".join(case.lines()))
        received = receive(case, library)
        gathered = gather_context(case, library, case.received_at)
        applied = apply_policy(case, library, received, gathered)
        matched = applied.matched
        matches.update(m.policy.id for m in matched)
        # a clause failing only because a definition it reads failed is not reported: the
        # definition that fails is, once
        own = [f for f in applied.failures if not f.why.startswith("definition ")]
        for failure in (*_failed_definitions(library, gathered.scope), *own):
            _count_failure(library, failed, raw, failure)
        for x, a in enumerate(matched):
            for b in matched[x + 1 :]:
                if a.policy.precedence == b.policy.precedence and (
                    a.prescription() != b.prescription()
                ):
                    _count_pair(library, pairs, raw, a, b)
    return matches, pairs, failed


def _failed_definitions(library: Library, scope: Scope) -> list[Failure]:
    """The definitions that fail on the case (each evaluated, read or not), but not those
    failing only because a definition they read fails: that one is reported."""
    failures: list[Failure] = []
    defined = library.defined or {}
    for d in library.definitions:
        status, why = scope.defined(d)
        inherited = any(
            scope.defined(defined[r])[0] == FAILED for r in d.expression.roots if r in defined
        )
        if status == FAILED and not inherited:
            failures.append(Failure(f"definition {d.name}", "expr", d.expression.source, why))
    return failures


def _count_failure(library: Library, failed: Failed, raw: dict[str, Any], failure: Failure) -> None:
    key = (failure.owner, failure.source)
    if key in failed:
        n, example, why = failed[key]
        failed[key] = (n + 1, example, why)
    else:
        paths = sorted(case_paths(library, failure.source))
        shown = {p: _raw_value(raw, p) for p in paths}
        failed[key] = (1, {"case_id": raw["case_id"], **shown}, failure.why)


def _count_pair(
    library: Library, pairs: Pairs, raw: dict[str, Any], a: PolicyMatch, b: PolicyMatch
) -> None:
    key = (a.policy.id, b.policy.id)
    if key in pairs:
        n, ex, pa, pb = pairs[key]
        pairs[key] = (n + 1, ex, pa, pb)
    else:
        pairs[key] = (1, _example(library, raw, a, b), _prescription(a), _prescription(b))


def _conflicts(library: Library, pairs: Pairs) -> list[LintFinding]:
    """The likely conflicts, in the library's order of policies."""
    order = {p.id: i for i, p in enumerate(library.policies)}
    citation = {p.id: p.citation for p in library.policies}
    precedence = {p.id: p.precedence for p in library.policies}
    return [
        LintFinding(
            "conflict",
            (a_id, b_id),
            f"{a_id} ({citation[a_id]}) and {b_id} ({citation[b_id]}), precedence "
            f"{precedence[a_id]}: both hold, and {a_id} says {pa!r} while {b_id} says {pb!r}",
            count=n,
            example=example,
        )
        for (a_id, b_id), (n, example, pa, pb) in sorted(
            pairs.items(), key=lambda kv: (order[kv[0][0]], order[kv[0][1]])
        )
    ]


def report_text(report: LintReport) -> str:
    lines = [
        f"tier2 lint: {report.library} {report.version} ({report.digest}): {report.policies} "
        f"policies, {report.samples} generated cases (seed {report.seed})"
        + (f" and {report.examples} example cases" if report.examples else ""),
        "",
    ]
    conflicts = report.of("conflict")
    lines.append(
        f"Likely conflicts (equal precedence, both hold, different prescriptions): {len(conflicts)}"
    )
    for i, f in enumerate(conflicts, 1):
        lines.append(f"  {i}. {' x '.join(f.subject)}: on {f.count} of {report.samples} cases")
        lines.append(f"     {f.detail}")
        example = ", ".join(f"{k}={v!r}" for k, v in f.example.items())
        lines.append(f"     e.g. {example}")
    for kind, title in (
        ("can_fail", "Clauses that can fail (a case with them goes to a human)"),
        ("unreachable", "Unreachable policies"),
    ):
        found = report.of(kind)
        lines.append("")
        lines.append(f"{title}: {len(found) or 'none'}")
        lines.extend(f"  - {f.detail}" for f in found)
    unknown = report.of("unknown_request_type")
    if unknown:  # (only when there are: a library with none reads as before)
        lines.append("")
        lines.append(f"Undeclared request types (such a clause never holds): {len(unknown)}")
        lines.extend(f"  - {f.detail}" for f in unknown)
    lines.append("")
    lines.append("Matches per policy: " + ", ".join(f"{k} {v}" for k, v in report.matches.items()))
    return "\n".join(lines) + "\n"


def report_json(report: LintReport) -> str:
    return orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode() + "\n"
