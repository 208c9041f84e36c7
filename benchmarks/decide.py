"""Decision speed: `tier2 decide` beside the cost of only reading and writing the same JSON.

    .venv/bin/python benchmarks/decide.py [--cases 50000] [--seed 1] [--workers 2] [--repeat 1]

For each built-in library: generates N diverse cases (seeded) into a JSON Lines file, then prints
- pipeline: cases/s of `decide()` on parsed cases, in this process (one core, after a warm-up);
- tier2 decide: wall clock of `python -m tier2 decide FILE --library NAME --workers W`, its
  output going to a file;
- JSON only: wall clock of a bare parse-and-dump of the same file: one `python -c` process
  reading it line by line with the standard library's `json.loads` and writing `json.dumps`
  of each to a file (what reading and writing the JSON costs a Python program);
- their ratio (the target is at most 5).
With --repeat, each wall clock is the best of that many runs. Prints figures only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from tier2.contract import CaseError, parse_case
from tier2.core import decide
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator

# Reads each line of the file and writes it back as JSON.
_JSON_ONLY = """
import json, sys
with open(sys.argv[1]) as source, open(sys.argv[2], "w") as out:
    for line in source:
        out.write(json.dumps(json.loads(line)) + "\\n")
"""


def pipeline_rate(library_name: str, raws: list[dict[str, object]]) -> float:
    """Cases per second of `decide()` on cases already parsed, in this process."""
    library = load_library(library_name)
    cases = [parse_case(r, "bench") for r in raws]
    good = [c for c in cases if not isinstance(c, CaseError)]
    for case in good[:2000]:  # warm-up: imports, template compilation
        decide(case, library)
    start = time.perf_counter()
    for case in good:
        decide(case, library)
    return len(good) / (time.perf_counter() - start)


def tier2_decide(path: Path, library_name: str, workers: int) -> float:
    """Wall clock of `tier2 decide` on the file, its decisions written to a file."""
    command = [sys.executable, "-m", "tier2", "decide", str(path),
               "--library", library_name, "--workers", str(workers)]  # fmt: skip
    with path.with_suffix(".decisions").open("wb") as out:
        start = time.perf_counter()
        subprocess.run(command, stdout=out, check=True)
        return time.perf_counter() - start


def json_only(path: Path) -> float:
    """Wall clock of one process reading and writing back the file's JSON."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", _JSON_ONLY, str(path), str(path.with_suffix(".json"))], check=True
    )
    return time.perf_counter() - start


def best(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def report(name: str, args: argparse.Namespace, folder: Path) -> None:
    raws = CaseGenerator(load_library(name), args.seed).cases(args.cases)
    path = folder / f"{name}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in raws))
    decided = best(args.repeat, lambda: tier2_decide(path, name, args.workers))
    floor = best(args.repeat, lambda: json_only(path))
    rate = pipeline_rate(name, raws)
    print(f"{name:10s} tier2 decide {decided:6.2f} s   JSON only {floor:6.2f} s   "
          f"ratio {decided / floor:4.1f}   pipeline {rate:7,.0f} cases/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.cases:,} cases per library, "
          f"{args.workers} processes")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("saas", "ecommerce", "retail"):
            report(name, args, Path(tmp))


if __name__ == "__main__":
    main()
