"""`tier2 decide`, `tier2 lint` and `tier2 import`: cases and libraries, no service."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated

import typer

from tier2.contract import CaseError, Unit, read_units
from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_NOT_DECIDED,
    DbOption,
    Format,
    LibraryOption,
    case_models,
    long_lived_objects_settled,
    opened_store,
    parse_time,
    read_input,
    starting,
)

PARALLEL_FROM = 2000  # cases from which `tier2 decide` uses every core by default


def decide(
    case_file: Annotated[
        str,
        typer.Argument(
            metavar="CASE.json", help="A case, a JSON array, JSON Lines, or - for stdin."
        ),
    ],
    library: LibraryOption = "saas",
    now: Annotated[
        str | None,
        typer.Option(help="The clock (ISO-8601 with offset). Default: each case's received_at."),
    ] = None,
    fmt: Annotated[
        Format,
        typer.Option("--format", "-f", help="json: one decision per line; text: for a person."),
    ] = Format.json,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes deciding in parallel (the output is the same). "
            f"Default: one per core from {PARALLEL_FROM:,} cases, else 1.",
        ),
    ] = None,
) -> None:
    """Decide escalated cases: one decision per case, in order."""
    from tier2.app.deciding import decide_all

    clock = parse_time(now)
    with starting():
        lib = bootstrap.library(library)
    data = read_input(case_file)
    err = sys.stderr.buffer
    bad = 0
    units: list[Unit] = []
    for unit in read_units(data, jsonl=case_file.endswith(".jsonl")):
        if isinstance(unit, CaseError):  # the input as a whole
            bad += 1
            err.write("".join(line + "\n" for line in unit.lines()).encode())
        else:
            units.append(unit)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(units) >= PARALLEL_FROM else 1
    long_lived_objects_settled()  # the library and the input stay to the end
    verdicts = decide_all(lib, library, units, clock, text=fmt is Format.text, workers=workers)
    more_bad, failed = _write(verdicts)
    if bad or more_bad:
        raise typer.Exit(EXIT_BAD_INPUT)
    if failed:
        raise typer.Exit(EXIT_NOT_DECIDED)


def _write(verdicts: Iterable[Sequence[tuple[int, bytes]]]) -> tuple[int, int]:
    """Decisions to standard output in order, each error to standard error where it falls;
    how many cases were bad input and how many the library failed on."""
    from tier2.app.deciding import BAD_INPUT, DECIDED, NOT_DECIDED

    out, err = sys.stdout.buffer, sys.stderr.buffer
    bad = failed = 0
    for batch in verdicts:
        lines: list[bytes] = []
        for status, written in batch:
            if status == DECIDED:
                lines.append(written)
                continue
            bad += status == BAD_INPUT
            failed += status == NOT_DECIDED
            out.write(b"".join(lines))  # what went before it first, as it is decided
            lines.clear()
            out.flush()
            err.write(written)
            err.flush()
        out.write(b"".join(lines))
    out.flush()
    return bad, failed


def lint(
    library: Annotated[
        str, typer.Argument(help="Built-in library (saas, ecommerce, retail) or a folder.")
    ],
    samples: Annotated[
        int, typer.Option(help="Generated cases to evaluate the policies over.")
    ] = 20000,
    seed: Annotated[int, typer.Option(help="Seed of the generated cases.")] = 7,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    strict: Annotated[bool, typer.Option(help="Exit 1 when there is any finding.")] = False,
) -> None:
    """Check a library before any case: likely conflicts, unknown fields, unreachable policies."""
    from tier2.library.lint import lint_library, report_json, report_text

    with starting():
        lib = bootstrap.library(library)
    report = lint_library(lib, samples=samples, seed=seed)
    sys.stdout.write(report_json(report) if fmt is Format.json else report_text(report))
    if strict and report.findings:
        raise typer.Exit(1)


def import_cases(
    case_file: Annotated[
        str,
        typer.Argument(
            metavar="CASES",
            help="Cases in the contract's format (a case, an array, JSON Lines, or -).",
        ),
    ],
    db: DbOption = None,
) -> None:
    """File escalations into the embedded local help desk (tickets, handoff log, CRM)."""
    from tier2.helpdesk.local import LocalHelpDesk

    good, bad = case_models(case_file)
    with opened_store(db) as engine:
        filed = LocalHelpDesk(engine).import_cases(good)
        where = engine.url.render_as_string()
    tickets = len({c.ticket.id for c in good})
    again = " (a ticket escalated again replaces its earlier escalation)" if tickets < filed else ""
    sys.stdout.write(f"filed {filed} escalation(s) on {tickets} ticket(s) in {where}{again}\n")
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)
