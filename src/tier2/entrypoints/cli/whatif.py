"""`tier2 whatif LIBRARY`: try a policy change on every stored case before it touches one."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import DbOption, progress, starting
from tier2.entrypoints.cli.report import _date

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tier2.app.whatif import Tally
    from tier2.core.library import Library


class WhatIfFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


@dataclass
class _Replay:
    """What each replaying process inherits (by fork): the draft, what it is compared with
    (None: the stored decisions), the store's URL; and the engine it opens for itself."""

    draft: Library | None = None
    against: Library | None = None
    url: str | None = None
    engine: tuple[int, str, Engine] | None = None  # (the process, the URL, its engine)


_REPLAY = _Replay()


def _part(ids: list[str]) -> Tally:
    """One part of the replay: these cases read from the store and decided again."""
    from tier2.app.whatif import tally
    from tier2.store.db import make_engine
    from tier2.store.whatif import stored_cases

    r = _REPLAY
    assert r.draft is not None and r.url is not None
    if r.engine is None or r.engine[:2] != (os.getpid(), r.url):
        if r.engine is not None and r.engine[0] == os.getpid():
            r.engine[2].dispose()  # (another store, in this process)
        r.engine = (os.getpid(), r.url, make_engine(r.url, immediate=False))
    return tally(stored_cases(r.engine[2], ids), r.draft, r.against)


def whatif(  # noqa: PLR0917 (Typer: each option is a parameter)
    library: Annotated[str, typer.Argument(help="The draft: a built-in library or a folder.")],
    db: DbOption = None,
    first: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="First day (cases received).")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="Last day, included.")
    ] = None,
    format: Annotated[
        WhatIfFormat, typer.Option(help="text, json, or csv (one row per changed case).")
    ] = WhatIfFormat.text,
    workers: Annotated[int, typer.Option(help="Replaying processes (default: one per core).")] = 0,
    lint: Annotated[
        bool, typer.Option(help="Lint the draft first; its findings head the report.")
    ] = True,
    against: Annotated[
        str | None,
        typer.Option(
            metavar="LIBRARY",
            help="Compare with the cases decided again under this library (a built-in, a "
            "folder, or a stored version's digest) instead of the decisions they got.",
        ),
    ] = None,
) -> None:
    """Decide every stored case in the period again under LIBRARY, as it was first decided
    (its stored input, its original decision time), with no effect anywhere; compare with
    the decisions it got: outcomes, targets, actions and money, each changed case, and the
    agreement with seniors' reviews."""
    import orjson

    from tier2.app.whatif import Tally, summary
    from tier2.store.whatif import count_decided, id_parts

    period = (_date(first, "--from"), _date(last, "--to"))
    from tier2.entrypoints.cli.library import load_library_spec

    with starting():
        engine = bootstrap.store(db)
    try:
        draft, _ = load_library_spec(library, engine)
        compared = None if against is None else load_library_spec(against, engine)[0]
    except BaseException:
        engine.dispose()
        raise
    zone = _zone(draft)
    start = datetime.combine(period[0], time(), zone) if period[0] else None
    end = datetime.combine(period[1] + timedelta(days=1), time(), zone) if period[1] else None
    found = _lint(draft) if lint else None
    _REPLAY.draft, _REPLAY.against = draft, compared
    _REPLAY.url = engine.url.render_as_string(hide_password=False)
    whole = Tally()
    try:
        total = count_decided(engine, start, end)
        with progress() as bar:
            task = bar.add_task(f"replaying under {draft.name} {draft.version}", total=total)
            parts = id_parts(engine, start, end, PART)
            for part in _replayed(parts, workers, several=total > PART):
                whole.merge(part)
                bar.advance(task, part.cases)
    finally:
        engine.dispose()
    result = summary(whole, library=draft, lint=found, against=compared)
    if format is WhatIfFormat.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif format is WhatIfFormat.csv:
        _csv(result)
    else:
        sys.stdout.write(_text(result))


PART = 2000  # cases a replaying process reads and decides at a time


def _replayed(parts: Iterator[list[str]], workers: int, *, several: bool) -> Iterator[Tally]:
    """Each part replayed, in forked processes (one per core) or here. At most a few parts
    per process are read ahead, so memory stays flat however many cases there are."""
    n = workers or (os.cpu_count() or 1)
    if n <= 1 or not several:
        yield from map(_part, parts)
        return
    ahead = threading.BoundedSemaphore(2 * n)

    def fed() -> Iterator[list[str]]:
        for part in parts:
            ahead.acquire()
            yield part

    with multiprocessing.get_context("fork").Pool(n) as pool:
        for done in pool.imap_unordered(_part, fed()):
            ahead.release()
            yield done


def _lint(draft: Library) -> dict[str, Any]:
    from tier2.library.lint import lint_library

    report = lint_library(draft, samples=5000)
    return {
        "findings": len(report.findings),
        "by_kind": {k: len(report.of(k)) for k in ("conflict", "can_fail", "unreachable")},
        "first": [
            {"kind": f.kind, "subject": list(f.subject), "detail": f.detail}
            for f in report.findings[:10]
        ],
    }


def _zone(lib: Library) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(lib.sla.calendar.timezone)


def _csv(result: dict[str, Any]) -> None:
    import csv

    from tier2.app.whatif import changed_rows
    from tier2.entrypoints.reporting import spreadsheet_safe

    writer = csv.writer(sys.stdout, lineterminator="\n")
    for row in changed_rows(result["changes"]):
        writer.writerow([spreadsheet_safe(c) for c in row])


def _text(r: dict[str, Any]) -> str:
    lib = r["library"]
    lines = [f"what-if: {lib['name']} {lib['version']} ({lib['digest']})"]
    lint = r["lint"]
    if lint is not None:
        kinds = ", ".join(f"{k} {v}" for k, v in lint["by_kind"].items())
        lines.append(f"lint: {lint['findings']} finding(s) ({kinds})")
        lines += [f"  {f['kind']}: {', '.join(f['subject'])}: {f['detail']}" for f in lint["first"]]
    lines += [
        f"cases replayed: {r['cases']:,}: unchanged {r['unchanged']:,}, changed {r['changed']:,}, "
        f"reasons only {r['reasons_only']:,}, errored {r['errored']:,}"
        + (f", actions' parameters only {r['params_only']:,}" if r.get("params_only") else ""),
        "outcomes (old -> new):",
    ]
    for old, news in r["matrix"].items():
        lines.append(f"  {old:16} " + ", ".join(f"-> {new} {n:,}" for new, n in news.items()))
    lines.append("escalations to people (before -> after):")
    for target, n in r["to_humans"].items():
        lines.append(f"  {target:20} {n['before']:,} -> {n['after']:,}")
    lines.append("money carried out (change): " + (_money(r["money_delta"]) or "none"))
    review = r["review"]
    if review["reviewed"]:
        lines.append(
            f"agreement with seniors' reviews ({review['reviewed']:,}): "
            f"{review['agreement_before']:.1%} -> {review['agreement_after']:.1%}"
        )
    if r["changes"]:
        lines.append("biggest changes:")
    for c in r["changes"][:10]:
        old, new = c["old"], c["new"]
        lines.append(
            f"  {c['case_id']}: {old['outcome']} {old['escalate_to'] or ''} ({old['first_reason']})"
            f" -> {new['outcome']} {new['escalate_to'] or ''} ({new['first_reason']})"
        )
    for e in r["errors"][:10]:
        lines.append(f"  error: case {e['case_id']}: {e['error']}")
    return "\n".join(lines) + "\n"


def _money(delta: dict[str, dict[str, float]]) -> str:
    return ", ".join(
        f"{kind} {amount:+,.2f} {currency}".rstrip()
        for kind, by in delta.items()
        for currency, amount in by.items()
    )
