"""`tier2 library`: the library versions a store keeps, and what changed between two."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tier2.entrypoints import bootstrap
from tier2.entrypoints.cli._common import DbOption, Format, fail, opened_store, starting

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tier2.core.library import Library
    from tier2.store.library_versions import StoredVersion

library_app = typer.Typer(
    help="Policy library versions: what changed between two, the versions a store keeps."
)

EXIT_DIFFERENT = 1  # like diff: 0 identical, 1 different, 2 bad input
_DIGEST = re.compile(r"(sha256:)?[0-9a-f]{8,16}")

LibraryArgument = Annotated[
    str,
    typer.Argument(
        help="A built-in library (saas, ecommerce, retail), a folder, or with --db a stored digest "
        "(sha256:..., or its first 8 or more hex digits)."
    ),
]


@library_app.command("diff")
def diff(
    old: LibraryArgument,
    new: LibraryArgument,
    db: Annotated[
        str | None,
        typer.Option(help="The case store whose library versions a digest names (URL or path)."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
) -> None:
    """What changed from OLD to NEW, policy by policy (added, removed, and each changed
    field, old → new), then the authority ladder, management triggers, routing, SLA,
    currencies, the other settings and the templates. Exit 0 when they are the same, 1 when
    they differ, 2 when one cannot be loaded."""
    import orjson

    from tier2.library.diff import diff_libraries, render_text

    engine = None
    if db is not None:
        with starting():
            engine = bootstrap.store(db)
    try:
        old_lib, old_files = load_library_spec(old, engine)
        new_lib, new_files = load_library_spec(new, engine)
    finally:
        if engine is not None:
            engine.dispose()
    found = diff_libraries(old_lib, new_lib, old_files, new_files)
    if fmt is Format.json:
        sys.stdout.write(orjson.dumps(found.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_text(found))
    if not found.identical:
        raise typer.Exit(EXIT_DIFFERENT)


def load_library_spec(spec: str, engine: Engine | None) -> tuple[Library, dict[str, bytes]]:
    """A library and its files, from a built-in name, a folder or a stored digest."""
    from pathlib import Path

    from tier2.library.loader import (
        BUILT_IN,
        LibraryError,
        library_files,
        load_library,
        resolve_library_path,
    )

    try:
        if spec in BUILT_IN or Path(spec).is_dir():
            library = load_library(spec)
            return library, library_files(resolve_library_path(spec))
        if _DIGEST.fullmatch(spec.lower()):
            if engine is None:
                raise fail(
                    f"library {spec!r}: not a built-in library or a folder "
                    "(a stored digest needs --db)"
                )
            return _stored(spec.lower(), engine)
        return load_library(spec), {}  # (raises: not a built-in library and not a folder)
    except LibraryError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"library {spec!r}: cannot read {exc.filename}: {exc.strerror}") from None


def _stored(spec: str, engine: Engine) -> tuple[Library, dict[str, bytes]]:
    from tier2.store.library_versions import digests_starting, load_stored, stored_files

    found = digests_starting(engine, spec)
    if not found:
        raise fail(f"{spec}: no library version stored with this digest (tier2 library list)")
    if len(found) > 1:
        raise fail(f"{spec}: more than one stored digest starts so: {', '.join(found)}")
    files = stored_files(engine, found[0])
    if files is None:  # (removed since)
        raise fail(f"{spec}: no library version stored with this digest (tier2 library list)")
    return load_stored(files, found[0]), files


@library_app.command("list")
def list_(
    db: DbOption = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
) -> None:
    """The library versions that decided cases in the store: digest, name, version, when it
    was stored and how many decisions name it (first stored first). Versions whose files the
    store did not keep (decided before it kept them) come last, marked `not stored`."""
    import orjson

    from tier2.store.library_versions import library_versions

    with opened_store(db) as engine:
        versions = library_versions(engine)
    if fmt is Format.json:
        rows = [_json_row(v) for v in versions]
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for v in versions:
        sys.stdout.write(_text_row(v) + "\n")
    if not versions:
        sys.stdout.write("no library versions (a runner stores its library when it starts)\n")


def _json_row(v: StoredVersion) -> dict[str, object]:
    return {
        "digest": v.digest,
        "name": v.name,
        "version": v.version,
        "stored_at": None if v.stored_at is None else v.stored_at.isoformat(),
        "decisions": v.decisions,
        "stored": v.stored,
    }


def _text_row(v: StoredVersion) -> str:
    from tier2.contract import printable

    at = "not stored" if v.stored_at is None else f"{v.stored_at:%Y-%m-%d %H:%M} UTC"
    decisions = f"{v.decisions:,} decision{'s' * (v.decisions != 1)}"
    return printable(f"{v.digest}  {v.name} {v.version}  {at}  {decisions}")
