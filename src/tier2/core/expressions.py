"""CEL, compiled once on load and evaluated against one case's plain-data view.

The standard Common Expression Language (via the `common-expression-language` package) is
safe and not Turing-complete: no loops, no I/O, no access to Python objects. A clause
*holds* only when it evaluates to exactly ``true``; an absent field raises inside CEL and
so makes the clause not hold, which is the handbook's convention ("a condition on a field
that is absent is false").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cel


class ExpressionError(ValueError):
    """An expression that does not compile."""


class EvaluationError(ValueError):
    """An expression that could not be evaluated against this case (e.g. a field is absent)."""


def _ceil(x: float) -> float:
    return float(math.ceil(x))


def _floor(x: float) -> float:
    return float(math.floor(x))


def _least(*xs: float) -> float:
    return float(min(xs))


def _greatest(*xs: float) -> float:
    return float(max(xs))


# The names of cel-go's math extension, so libraries stay portable to other CEL runtimes.
FUNCTIONS: Mapping[str, Any] = {
    "math.ceil": _ceil,
    "math.floor": _floor,
    "math.least": _least,
    "math.greatest": _greatest,
}


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    program: Any
    variables: frozenset[str]


def compile_expression(source: str) -> Expression:
    """Compile CEL source once; raise ExpressionError with CEL's own message if it is not valid."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    try:
        program = cel.compile(source)
    except Exception as exc:
        raise ExpressionError(_first_line(str(exc))) from None
    variables = frozenset(v for v in program.variables() if v != "math")
    # cel reports names it does not know as variables; "math" means the math extension.
    return Expression(source=source, program=program, variables=variables)


def _first_line(text: str) -> str:
    text = text.strip()
    return text.replace("\n", " ") if len(text) < 300 else text[:300]


def plain(value: Any) -> Any:
    """JSON data as CEL sees JSON: every number a double (so 240 and 240.0 mix freely)."""
    kind = type(value)
    if kind is int:
        return float(value)
    if kind is dict:
        return {k: plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    return value


class Scope:
    """One case's evaluation context: built once, then every clause of the library runs on it."""

    __slots__ = ("_context",)

    def __init__(self, view: Mapping[str, Any], functions: bool = True) -> None:
        # Registering the extension functions costs; libraries that use none skip it.
        self._context = cel.Context(dict(view), functions=dict(FUNCTIONS) if functions else None)

    def holds(self, expression: Expression) -> bool:
        try:
            return expression.program.execute(self._context) is True
        except Exception:  # absent field, type mismatch: the clause does not hold
            return False

    def value(self, expression: Expression) -> Any:
        try:
            return expression.program.execute(self._context)
        except Exception as exc:
            raise EvaluationError(_first_line(str(exc))) from None
