"""Decision throughput: the pure pipeline, and `tier2 decide` end to end on JSON Lines.

    .venv/bin/python benchmarks/decide.py [--cases 100000] [--seed 1]

For each built-in library: generates N realistic cases (seeded), then reports
- pipeline: cases/s of `decide()` on parsed cases (one core, in process), after a warm-up;
- end to end: cases/s of `tier2 decide FILE.jsonl > OUT.jsonl` in a subprocess (parse, decide,
  write JSON to a file), wall clock including start-up, with `--workers 1` and with one
  worker per core.
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from tier2.contract import CaseError, decision_json, parse_case
from tier2.core import decide
from tier2.core.documents import document
from tier2.core.expressions import Scope
from tier2.core.stages import apply_policy, gather_context, receive, resolve_or_escalate
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator


def pipeline_rate(library_name: str, raws: list[dict[str, object]]) -> tuple[float, dict[str, int]]:
    library = load_library(library_name)
    cases = [parse_case(r, "bench") for r in raws]
    good = [c for c in cases if not isinstance(c, CaseError)]
    assert len(good) == len(cases)
    for case in good[:2000]:  # warm-up: imports, template compilation, clause memo
        decide(case, library)
    outcomes: dict[str, int] = {}
    start = time.perf_counter()
    for case in good:
        d = decide(case, library)
        outcomes[d.outcome.value] = outcomes.get(d.outcome.value, 0) + 1
    return len(good) / (time.perf_counter() - start), outcomes


def breakdown(library_name: str, raws: list[dict[str, object]]) -> str:
    """Mean microseconds per case of each stage and of the edge, on warm code."""
    library = load_library(library_name)
    lines = [orjson.dumps(r) for r in raws]
    spent: dict[str, float] = dict.fromkeys(
        ("edge", "receive", "gather_context", "apply_policy",
         "resolve_or_escalate", "document", "serialize"), 0.0)  # fmt: skip
    clock = time.perf_counter
    for line in lines:
        t1 = clock()
        case = parse_case(orjson.loads(line), "bench")
        t2 = clock()
        assert not isinstance(case, CaseError)
        received = receive(case, library)
        t3 = clock()
        gathered = gather_context(case, library, case.received_at)
        t4 = clock()
        applied = apply_policy(case, library, received, gathered)
        t5 = clock()
        resolution = resolve_or_escalate(library, applied)
        t6 = clock()
        document(case, library, case.received_at, received=received, gathered=gathered,
                 applied=applied, resolution=resolution)  # fmt: skip
        t7 = clock()
        decision = decide(case, library)
        t8 = clock()
        decision_json(decision)
        t9 = clock()
        steps = (t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t9 - t8)
        for name, dt in zip(spent, steps, strict=True):
            spent[name] += dt
    n = len(lines)
    return ", ".join(f"{k} {v / n * 1e6:.0f}" for k, v in spent.items())


class _TimedTemplates:
    """The library's templates, timing each render."""

    def __init__(self, templates: Any) -> None:
        self.templates, self.spent = templates, 0.0

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        start = time.perf_counter()
        try:
            return str(self.templates.render(name, context))
        finally:
            self.spent += time.perf_counter() - start


def inside_components(library_name: str, raws: list[dict[str, object]]) -> str:
    """Mean µs per case spent inside the two components the pipeline is built on: Jinja2
    rendering the documents, and CEL evaluating the clauses its memo cannot answer. Their sum
    is a floor under the pipeline's cost per case that no change to tier2's own code lowers."""
    loaded = load_library(library_name)
    templates = _TimedTemplates(loaded.templates)
    library = dataclasses.replace(loaded, templates=templates)
    cases = [parse_case(r, "bench") for r in raws]
    good = [c for c in cases if not isinstance(c, CaseError)]
    for case in good[:2000]:  # the same warm-up as the pipeline's
        decide(case, library)
    templates.spent, cel = 0.0, [0.0, 0]
    execute, convert = Scope._execute, Scope._data

    def timed(scope: Scope, expression: Any, data: Any) -> tuple[bool, Any]:
        start = time.perf_counter()
        try:
            return execute(scope, expression, data)
        finally:
            cel[0] += time.perf_counter() - start
            cel[1] += 1

    def converted(scope: Scope, expression: Any) -> Any:
        start = time.perf_counter()
        try:
            return convert(scope, expression)
        finally:
            cel[0] += time.perf_counter() - start

    Scope._execute, Scope._data = timed, converted  # type: ignore[method-assign,assignment]
    try:
        start = time.perf_counter()
        for case in good:
            decide(case, library)
        total = time.perf_counter() - start
    finally:
        Scope._execute, Scope._data = execute, convert  # type: ignore[method-assign]
    n = len(good)
    return (
        f"whole pipeline {total / n * 1e6:.0f}, of which Jinja2 rendering "
        f"{templates.spent / n * 1e6:.0f} and CEL (the fields converted, the clauses evaluated) "
        f"{cel[0] / n * 1e6:.0f} "
        f"({cel[1] / n:.2f} evaluations per case)"
    )


def end_to_end_rate(library_name: str, raws: list[dict[str, object]], workers: int) -> float:
    """`tier2 decide cases.jsonl > decisions.jsonl`: decisions go to a file, as a user would
    keep them (not read back by this script while it is timed)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in raws) + b"\n")
        command = [sys.executable, "-m", "tier2", "decide", str(path),
                   "--library", library_name, "--workers", str(workers)]  # fmt: skip
        with (Path(tmp) / "decisions.jsonl").open("w+b") as out:
            start = time.perf_counter()
            subprocess.run(command, stdout=out, check=True)
            elapsed = time.perf_counter() - start
            out.seek(0)
            assert sum(1 for _ in out) == len(raws)
    return len(raws) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    version = sys.version.split()[0]
    cores = os.cpu_count() or 1
    print(f"python {version}, {cores} cores, {args.cases:,} cases per library")
    for name in ("saas", "ecommerce"):
        raws = CaseGenerator(load_library(name), args.seed).cases(args.cases)
        rate, outcomes = pipeline_rate(name, raws)
        one = end_to_end_rate(name, raws, 1)
        every = end_to_end_rate(name, raws, cores)
        mix = ", ".join(f"{k} {v / args.cases:.0%}" for k, v in sorted(outcomes.items()))
        print(f"{name:10s} pipeline {rate:8,.0f} cases/s  tier2 decide {one:8,.0f} cases/s "
              f"(1 process), {every:8,.0f} cases/s ({cores} processes)   ({mix})")  # fmt: skip
        print(f"{'':10s} µs per case: {breakdown(name, raws[:20000])}")
        print(f"{'':10s} µs per case: {inside_components(name, raws[:20000])}")


if __name__ == "__main__":
    main()
