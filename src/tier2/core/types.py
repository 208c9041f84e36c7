"""The types a library declares for its data: facts, plan fields, request fields, definitions.

A type is written in YAML as
- a scalar name: `string`, `number`, `money`, `bool`, `timestamp` (and `any` where allowed);
- `list<T>` or `map<T>`, T itself a type written as text (`list<map<string>>`);
- a mapping: a record, field -> type, nested at any depth;
- a one-element list `[T]`: a list of T, where T may be a record mapping.

`parse_type` reads a declaration into a small frozen tree (`Scalar`, `ListOf`, `MapOf`,
`Record`); `conforms` tells whether a JSON (or CEL) value fits one; `declaration` writes a
type back in its YAML form. Here, in the core, so the contract (request fields), the library
loader (facts, plan) and the core (definitions) read types alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SCALARS = ("string", "number", "money", "bool", "timestamp")
ANY = "any"
EXPECTED = "string, number, money, bool, timestamp, list<T>, map<T>, a mapping of fields or [T]"


@dataclass(frozen=True, slots=True)
class Scalar:
    """One of SCALARS (or `any`)."""

    name: str


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list whose every element is of `item`."""

    item: Type


@dataclass(frozen=True, slots=True)
class MapOf:
    """A map from strings to values of `value`."""

    value: Type


@dataclass(frozen=True, slots=True)
class Record:
    """A map with named fields, in their declared order; a field may be absent or null."""

    fields: tuple[tuple[str, Type], ...]

    def field_types(self) -> dict[str, Type]:
        """The fields as a dict: name -> type."""
        return dict(self.fields)


Type = Scalar | ListOf | MapOf | Record


class TypeDeclarationError(ValueError):
    """A declaration that is no type: the message names the field path and the bad type."""


_GENERIC = re.compile(r"\s*(list|map)\s*<(.*)>\s*", re.DOTALL)


MAX_DEPTH = 16  # records, lists and maps inside one another
MAX_FIELDS = 2000  # fields and element types in one declaration, all told


def parse_type(declaration: Any, where: str, *, allow_any: bool = False) -> Type:
    """The type a YAML declaration writes; `where` is the field path for the error message,
    e.g. `facts.order.items`. `any` is a type only with `allow_any` (definitions). A
    declaration nested more than MAX_DEPTH deep, or of more than MAX_FIELDS parts (YAML
    aliases count each time they are used), is refused.

    Raises TypeDeclarationError, e.g. "facts.order.lines: no type 'list' (a type is ...)".
    """
    return _parse(declaration, where, allow_any, [0])


def _parse(declaration: Any, where: str, allow_any: bool, parts: list[int]) -> Type:
    parts[0] += 1
    if parts[0] > MAX_FIELDS:
        raise TypeDeclarationError(f"{where}: more than {MAX_FIELDS} fields and types in all")
    if where.count(".") + where.count("[") > MAX_DEPTH:
        raise TypeDeclarationError(f"{where}: nested more than {MAX_DEPTH} deep")
    if isinstance(declaration, str):
        return _parse_text(declaration, declaration, where, allow_any)
    if isinstance(declaration, Mapping):
        return _record(declaration, where, allow_any, parts)
    if isinstance(declaration, list):
        if len(declaration) != 1:
            raise TypeDeclarationError(
                f"{where}: a list type is written [T], with one element (got {len(declaration)})"
            )
        return ListOf(_parse(declaration[0], f"{where}[0]", allow_any, parts))
    raise TypeDeclarationError(f"{where}: no type {declaration!r} (a type is {EXPECTED})")


def parse_record(declaration: Mapping[Any, Any], where: str, *, allow_any: bool = False) -> Record:
    """A mapping of field -> type declarations as a Record (the field path of each field is
    `where.field`; with `where` empty, just `field`: a whole `facts:` section)."""
    return _record(declaration, where, allow_any, [0])


def _record(
    declaration: Mapping[Any, Any], where: str, allow_any: bool, parts: list[int]
) -> Record:
    fields: list[tuple[str, Type]] = []
    for name, declared in declaration.items():
        if not isinstance(name, str) or not name:
            raise TypeDeclarationError(f"{where or 'a field'}: {name!r} is not a field name")
        path = f"{where}.{name}" if where else name
        fields.append((name, _parse(declared, path, allow_any, parts)))
    return Record(tuple(fields))


def _parse_text(text: str, whole: str, where: str, allow_any: bool) -> Type:
    if text.count("<") > MAX_DEPTH:
        raise TypeDeclarationError(f"{where}: nested more than {MAX_DEPTH} deep")
    name = text.strip()
    if name in SCALARS or (allow_any and name == ANY):
        return Scalar(name)
    generic = _GENERIC.fullmatch(text)
    if generic is not None:
        inner = _parse_text(generic.group(2), whole, where, allow_any)
        return ListOf(inner) if generic.group(1) == "list" else MapOf(inner)
    raise TypeDeclarationError(f"{where}: no type {whole!r} (a type is {EXPECTED})")


def declaration(type_: Type) -> Any:
    """A type written back in its YAML form: a name, `list<T>`/`map<T>`, a dict for a record,
    `[record]` for a list of records."""
    if isinstance(type_, Scalar):
        return type_.name
    if isinstance(type_, Record):
        return {name: declaration(t) for name, t in type_.fields}
    if isinstance(type_, ListOf):
        inner = declaration(type_.item)
        return [inner] if isinstance(inner, dict | list) else f"list<{inner}>"
    inner = declaration(type_.value)
    return f"map<{inner}>" if isinstance(inner, str) else {"map": inner}  # (not declarable)


def kind_of(value: Any) -> str:
    """What a JSON (or CEL) value is, in words: `a string`, `a number`, `a list`, ..."""
    if value is True or value is False:
        return "a bool"
    return {
        str: "a string", float: "a number", int: "a number", list: "a list", tuple: "a list",
        dict: "a map", datetime: "a timestamp", type(None): "null",
    }.get(type(value), type(value).__name__)  # fmt: skip


def conforms(value: Any, type_: Type) -> str | None:
    """None if a JSON value (or a CEL value: a timestamp may be a datetime) fits the type; else
    what is wrong, e.g. "expected a list, got a string" or "[2].price: expected a number, got
    a string". A field that is null or missing fits (absent); an element of a list does not.
    A record's undeclared fields are allowed. A number (or money) is finite and not a bool; a
    timestamp is an ISO 8601 string or a datetime."""
    if value is None:
        return None
    wrong = _conforms(value, type_)
    if wrong is None:
        return None
    where, what = wrong
    return f"{where.removeprefix('.')}: {what}" if where else what


def _conforms(value: Any, type_: Type) -> tuple[str, str] | None:
    """(where inside the value, what is wrong), or None if the value fits."""
    if isinstance(type_, Scalar):
        what = _scalar(value, type_.name)
        return None if what is None else ("", what)
    if isinstance(type_, ListOf):
        if type(value) not in (list, tuple):
            return ("", f"expected a list, got {kind_of(value)}")
        for i, item in enumerate(value):
            wrong = ("", "null in a list") if item is None else _conforms(item, type_.item)
            if wrong is not None:
                return (f"[{i}]{wrong[0]}", wrong[1])
        return None
    if type(value) is not dict:
        expected = "a record" if isinstance(type_, Record) else "a map"
        return ("", f"expected {expected}, got {kind_of(value)}")
    checked = [(k, type_.value) for k in value] if isinstance(type_, MapOf) else list(type_.fields)
    for key, t in checked:
        item = value.get(key)
        wrong = None if item is None else _conforms(item, t)
        if wrong is not None:
            return (f".{key}{wrong[0]}", wrong[1])
    return None


def _scalar(value: Any, name: str) -> str | None:
    if name == ANY:
        return None
    if name in ("number", "money"):
        if value is True or value is False or type(value) not in (int, float):
            return f"expected a number, got {kind_of(value)}"
        return None if math.isfinite(value) else f"expected a finite number, got {value!r}"
    if name == "bool":
        return None if value is True or value is False else f"expected a bool, got {kind_of(value)}"
    if name == "string":
        return None if type(value) is str else f"expected a string, got {kind_of(value)}"
    if type(value) is datetime:
        return None
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return f"expected a timestamp (ISO 8601), got {value[:40]!r}"
        return None if parsed.tzinfo is not None else "expected a timestamp with its UTC offset"
    return f"expected a timestamp, got {kind_of(value)}"
