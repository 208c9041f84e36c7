"""What every command shares: options, exit codes, errors on one line, input, progress."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tier2.contract import FILING, CaseError, read_models

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy import Engine

    from tier2.app.sla_monitor import ScanStats
    from tier2.contract import CaseIn

EXIT_NOT_DECIDED = 1  # the library failed on a case (extends the contract's 0 and 2)
EXIT_BAD_INPUT = 2


class Format(StrEnum):
    json = "json"
    text = "text"


DbOption = Annotated[
    str | None,
    typer.Option(help="Database URL or SQLite path (default: TIER2_DB, else ./tier2.db)."),
]
ConfigOption = Annotated[
    Path | None, typer.Option(help="Configuration file (default: ./tier2.toml if present).")
]
ConnectorOption = Annotated[
    str | None,
    typer.Option(help="Help desk: local, rt or zendesk (default: tier2.toml's, else local)."),
]
LibraryOption = Annotated[
    str,
    typer.Option("--library", "-l", help="Built-in library (saas, ecommerce, retail) or a folder."),
]
ConfiguredLibraryOption = Annotated[
    str | None,
    typer.Option(
        "--library",
        "-l",
        help="Built-in library or folder (default: tier2.toml's, else saas).",
    ),
]


def fail(message: str) -> typer.Exit:
    """Exit 2 with one line on standard error."""
    sys.stderr.write(f"tier2: {message}\n")
    return typer.Exit(EXIT_BAD_INPUT)


def parse_time(value: str | None, option: str = "--now") -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: not an ISO-8601 time: {value!r}") from None
    if at.tzinfo is None:
        raise fail(f"{option}: needs an offset, like {value}+00:00")
    return at


def read_input(path: str) -> bytes:
    """A file's bytes, or standard input's for -."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None


def case_models(path: str) -> tuple[list[CaseIn], int]:
    """The good cases of a file (or - for standard input); each bad one's error lines are
    written to standard error and counted. Any request type is filed: the library that
    decides a case checks it then (an undeclared one is an input error on the case)."""
    good, bad = [], 0
    for item in read_models(read_input(path), path.endswith(".jsonl"), FILING):
        if isinstance(item, CaseError):
            bad += 1
            sys.stderr.write("".join(line + "\n" for line in item.lines()))
        else:
            good.append(item)
    return good, bad


def long_lived_objects_settled() -> None:
    """Keep the cyclic GC off the library and modules loaded so far, and let it run less
    often: a pass allocates many short-lived dicts, and collections walking every long-lived
    object cost a few per cent."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def progress() -> Progress:
    """A progress bar on standard error, shown only on a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )


def report_scan(stats: ScanStats) -> None:
    states = ", ".join(f"{k} {v}" for k, v in sorted(stats.states.items())) or "none"
    escalated = ", ".join(f"{k} {v}" for k, v in sorted(stats.escalated.items())) or "none"
    sys.stdout.write(
        f"sla: {stats.open_clocks} open clock(s) ({states}); escalated to support_manager: "
        f"{escalated}\n"
    )
    for case_id, problem in stats.failed:
        sys.stderr.write(f"case {case_id}: no SLA clock: {problem}\n")


@contextmanager
def opened_store(db: str | None) -> Iterator[Engine]:
    """The store the command names (else tier2.toml's), released on the way out; what cannot
    open it ends the command with its one line."""
    from tier2.entrypoints import bootstrap

    with starting():
        engine = bootstrap.store(db)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def starting() -> Iterator[None]:
    """What the composition root could not build ends the command with its one line."""
    from tier2.entrypoints.bootstrap import StartError
    from tier2.entrypoints.config import ConfigError

    try:
        yield
    except (StartError, ConfigError) as exc:
        raise fail(str(exc)) from None
