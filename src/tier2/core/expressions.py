"""CEL, compiled once on load and evaluated against one case's plain-data view.

The standard Common Expression Language (via the `common-expression-language` package) is
safe and not Turing-complete: no loops, no I/O, no access to Python objects. A clause
*holds* only when it evaluates to exactly ``true``; an absent field raises inside CEL and
so makes the clause not hold, which is the handbook's convention ("a condition on a field
that is absent is false").
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
_SHORT_NAMES = frozenset(name.rsplit(".", 1)[-1] for name in FUNCTIONS)  # as CEL reports calls


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_PATH = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\s*\()?")
_BOUND = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")
_KEYWORDS = {"true", "false", "null", "in", "has", "timestamp", "duration", "int", "double",
             "string", "size", "math", "type", "bool", "uint", "dyn"}  # fmt: skip
MEMO_LIMIT = 65536  # results kept per expression before its memo starts afresh
# One field compared with a literal: `customer.arr > 50000`, `facts.incident.id != null`.
_COMPARISON = re.compile(
    r"\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(==|!=|<=|>=|<|>)\s*(null|-?\d+(?:\.\d+)?)\s*"
)
_ORDER: Mapping[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def field_paths(source: str) -> set[str]:
    """Dotted field paths an expression reads (functions, methods, literals and
    comprehension variables left out). A path indexed or iterated further is read whole."""
    text = _STRING.sub('""', source)
    bound = set(_BOUND.findall(text))
    out: set[str] = set()
    for match in _PATH.finditer(text):
        path, call = match.group(1), match.group(2)
        parts = path.split(".")
        if call:  # f(...) or x.method(...): the last segment is a function
            parts = parts[:-1]
        if not parts or parts[0] in _KEYWORDS or parts[0] in bound:
            continue
        out.add(".".join(parts))
    return out


def path_tree(paths: Iterable[str]) -> dict[str, Any]:
    """Paths as a tree; None marks a subtree needed whole."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        parts = path.split(".")
        for i, part in enumerate(parts):
            if part in node and node[part] is None:
                break  # an ancestor is already needed whole
            if i == len(parts) - 1:
                node[part] = None
            else:
                node = node.setdefault(part, {})
    return tree


def prune(value: Any, paths: Mapping[str, Any] | None) -> Any:
    """Keep only the given paths of plain data (None: keep the whole subtree)."""
    if paths is None or type(value) is not dict:
        return value
    return {k: prune(value[k], sub) for k, sub in paths.items() if k in value}


@dataclass(frozen=True, slots=True, eq=False)
class Expression:
    """One compiled expression. Compared and hashed by identity: the loader interns them, so
    the same text anywhere in a library is one Expression (a cheap key for per-case results)."""

    source: str
    program: Any
    paths: tuple[str, ...] = ()  # the dotted field paths it reads
    steps: tuple[tuple[str, ...], ...] = ()  # the same paths, split
    tree: Mapping[str, Any] = field(default_factory=dict)  # the same paths as a tree
    calls: bool = False  # whether it calls an extension function (math.*)
    # For one field compared with a literal: the class of values CEL answers alike, so one
    # result is remembered per class (a number by the comparison's outcome, any non-null
    # value by its kind) instead of per value (every customer's ARR, every incident id).
    partition: Callable[[Any], Any] | None = None
    # Results by the values at `paths`: CEL is pure, so equal inputs give equal results.
    memo: dict[Any, tuple[bool, Any]] = field(default_factory=dict, repr=False)


def compile_expression(source: str) -> Expression:
    """Compile CEL source once; raise ExpressionError with CEL's own message if it is not valid."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    try:
        program = cel.compile(source)
    except Exception as exc:
        raise ExpressionError(_first_line(str(exc))) from None
    paths = sorted(field_paths(source))
    return Expression(
        source=source,
        program=program,
        paths=tuple(paths),
        steps=tuple(tuple(p.split(".")) for p in paths),
        tree=path_tree(paths),
        calls=bool(_SHORT_NAMES.intersection(program.references()["functions"])),
        partition=_partition(source, paths),
    )


def _partition(source: str, paths: list[str]) -> Callable[[Any], Any] | None:
    """How `Scope` keys the results of `FIELD OP LITERAL` (see `Expression.partition`).

    A value key (see `_frozen`) is a string, a double, None, the absent marker, or a tagged
    tuple. Compared with null, every value of one kind gives CEL's one answer; compared with
    a number, every double on one side of it does. Anything else keeps its own key."""
    match = _COMPARISON.fullmatch(source)
    if match is None or paths != [match.group(1)] or match.group(1).split(".")[0] in _KEYWORDS:
        return None
    op, literal = match.group(2), match.group(3)
    if literal == "null":
        if op not in ("==", "!="):
            return None

        def kind(key: Any) -> Any:
            if key is None or key is _ABSENT:
                return key
            if type(key) is tuple:  # ("short", ...) is an error, others a kind of value
                return key if key[0] == "short" else ("kind", key[0])
            return ("kind", type(key))

        return kind
    bound, compare = float(literal), _ORDER[op]

    def side(key: Any) -> Any:
        return ("side", compare(key, bound)) if type(key) is float else key

    return side


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


class _Absent:
    """A field the view does not have (distinct from null)."""

    __slots__ = ()


_ABSENT = _Absent()


def _frozen(value: Any) -> Any:
    """A hashable key for a plain value that keeps apart what CEL tells apart.

    Strings, doubles and null cannot collide with each other; booleans can (true == 1.0 in
    Python), so they are tagged; integers are doubles, as CEL will see them; timestamps keep
    their UTC offset.
    """
    kind = type(value)
    if kind is str or kind is float or value is None:
        return value
    if kind is int:  # CEL sees every JSON number as a double (see `plain`)
        return float(value)
    if kind is dict:
        return ("d", tuple(sorted((k, _frozen(v)) for k, v in value.items())))
    if kind is list:
        return ("l", tuple(_frozen(v) for v in value))
    if kind is datetime:
        return ("t", value, value.utcoffset())
    return (kind, value)


def _at(view: Mapping[str, Any], steps: tuple[str, ...]) -> Any:
    """The key of the value at a path: absent, or where the path ran into a non-map."""
    node: Any = view
    for depth, part in enumerate(steps):
        if type(node) is not dict:
            return ("short", depth, _frozen(node))
        node = node.get(part, _ABSENT)
    return node if node is _ABSENT else _frozen(node)


_UNSET = object()  # a path whose key this case has not computed yet


class Scope:
    """One case's evaluation context: every clause of the library runs against it.

    The view is the case's data as it is; converting values into CEL costs a few
    microseconds each, so a clause is evaluated on only the fields it reads (made plain for
    CEL then), and its result is remembered by their values.
    """

    __slots__ = ("_converted", "_done", "_functions", "_keys", "_memoize", "_view")

    def __init__(
        self, view: Mapping[str, Any], functions: bool = True, memoize: bool = True
    ) -> None:
        self._view = view
        self._functions = functions
        self._memoize = memoize
        self._done: dict[Expression, tuple[bool, Any]] = {}  # this case's results
        self._keys: dict[str, Any] = {}  # this case's value keys, by dotted path
        # this case's fields converted into CEL, by the paths read (and whether with functions)
        self._converted: dict[tuple[tuple[str, ...], bool], Any] = {}

    def _run(self, expression: Expression) -> tuple[bool, Any]:
        if not self._memoize:
            return self._execute(expression, plain(self._view))
        keys = self._keys
        paths = expression.paths
        if len(paths) == 1:
            key: Any = keys.get(paths[0], _UNSET)
            if key is _UNSET:
                key = keys[paths[0]] = _at(self._view, expression.steps[0])
            if expression.partition is not None:
                key = expression.partition(key)
        else:
            parts = []
            for path, steps in zip(paths, expression.steps, strict=True):
                part = keys.get(path, _UNSET)
                if part is _UNSET:
                    part = keys[path] = _at(self._view, steps)
                parts.append(part)
            key = tuple(parts)
        memo = expression.memo
        done = memo.get(key)
        if done is None:
            done = self._execute(expression, self._data(expression))
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[key] = done
        return done

    def _data(self, expression: Expression) -> Any:
        """The fields the expression reads, converted into a CEL context once per case for
        all the clauses that read the same fields (`x < d`, `x >= d` ...): CEL converts each
        value in microseconds, and evaluates on a converted context in well under one."""
        calls = expression.calls and self._functions
        key = (expression.paths, calls)
        context = self._converted.get(key)
        if context is None:
            data = plain(prune(self._view, expression.tree))
            try:
                context = cel.Context(data, functions=dict(FUNCTIONS) if calls else None)
            except Exception:  # a value CEL cannot take: evaluating says so
                context = data
            self._converted[key] = context
        return context

    def _execute(self, expression: Expression, data: Any) -> tuple[bool, Any]:
        try:
            if type(data) is dict and expression.calls and self._functions:
                return (
                    True,
                    expression.program.execute(cel.Context(data, functions=dict(FUNCTIONS))),
                )
            return (True, expression.program.execute(data))
        except Exception as exc:  # absent field, type mismatch
            return (False, _first_line(str(exc)))

    def _result(self, expression: Expression) -> tuple[bool, Any]:
        done = self._done.get(expression)
        if done is None:
            done = self._done[expression] = self._run(expression)
        return done

    def holds(self, expression: Expression) -> bool:
        ok, value = self._result(expression)
        return ok and value is True

    # all_hold and any_holds inline `_result`: they run every clause of every policy.
    def all_hold(self, expressions: Iterable[Expression]) -> bool:
        """Whether every expression holds (in order, stopping at the first that does not)."""
        results = self._done
        for expression in expressions:
            done = results.get(expression)
            if done is None:
                done = results[expression] = self._run(expression)
            if not done[0] or done[1] is not True:
                return False
        return True

    def any_holds(self, expressions: Iterable[Expression]) -> bool:
        """Whether some expression holds (in order, stopping at the first that does)."""
        results = self._done
        for expression in expressions:
            done = results.get(expression)
            if done is None:
                done = results[expression] = self._run(expression)
            if done[0] and done[1] is True:
                return True
        return False

    def value(self, expression: Expression) -> Any:
        ok, value = self._result(expression)
        if not ok:
            raise EvaluationError(value)
        return value
