"""CEL, compiled once on load and evaluated against one case's plain-data view.

The standard Common Expression Language (via the `common-expression-language` package) is
safe and not Turing-complete: no loops, no I/O, no access to Python objects. A clause
*holds* only when it evaluates to exactly ``true``; an absent field raises inside CEL and
so makes the clause not hold, which is the handbook's convention ("a condition on a field
that is absent is false").

An `Expression` is an immutable compiled program; `run` evaluates one against plain data. A
`Scope` is one case's data; given a `Memo` (a library owns one), it evaluates an expression
only on values the memo has not met, as CEL gives the same outcome for the same values.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
    """One compiled CEL program and the dotted field paths it reads. Compared and hashed by
    identity: the loader interns them, so the same text anywhere in a library is one Expression."""

    source: str
    program: Any  # cel.Program
    paths: tuple[str, ...] = ()
    calls: bool = False  # whether it calls an extension function (math.*)
    steps: tuple[tuple[str, ...], ...] = ()  # the same paths, split at the dots
    tree: Mapping[str, Any] | None = None  # the same paths as a tree (see `prune`)


def compile_expression(source: str) -> Expression:
    """Compile CEL source once; raise ExpressionError with CEL's own message if it is not valid."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    try:
        program = cel.compile(source)
    except Exception as exc:
        raise ExpressionError(_first_line(str(exc))) from None
    paths = tuple(sorted(field_paths(source)))
    return Expression(
        source=source,
        program=program,
        paths=paths,
        calls=bool(_SHORT_NAMES.intersection(program.references()["functions"])),
        steps=tuple(tuple(p.split(".")) for p in paths),
        tree=path_tree(paths),
    )


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


Outcome = tuple[bool, Any]  # (True, the value) or (False, why it has none)


def run(expression: Expression, data: Mapping[str, Any]) -> Outcome:
    """Evaluate an expression against plain data (converted into CEL here)."""
    extensions = dict(FUNCTIONS) if expression.calls else None
    try:
        return (True, expression.program.execute(cel.Context(plain(data), functions=extensions)))
    except Exception as exc:  # absent field, type mismatch, a value CEL cannot take
        return (False, _first_line(str(exc)))


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
    if kind is list or kind is tuple:
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


# One field compared with a literal: `customer.arr > 50000`, `facts.incident.id != null`.
_COMPARISON = re.compile(
    r"\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(==|!=|<=|>=|<|>)\s*(null|-?\d+(?:\.\d+)?)\s*"
)
_ORDER: Mapping[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip
Classify = Callable[[Any], Any]


def value_classes(expression: Expression) -> Classify | None:
    """For one field compared with a literal, the class of values CEL answers alike, so one
    outcome serves the class: compared with null, every value of one kind; compared with a
    number, every number on one side of it. None for any other expression (each value is
    its own class)."""
    match = _COMPARISON.fullmatch(expression.source)
    if match is None or expression.paths != (match.group(1),):
        return None
    op, literal = match.group(2), match.group(3)
    if literal == "null":
        return _kind if op in ("==", "!=") else None
    bound, compare = float(literal), _ORDER[op]
    return lambda key: ("side", compare(key, bound)) if type(key) is float else key


def _kind(key: Any) -> Any:
    """Null, absent and a path that ran into a non-map stay apart; any other value is its kind."""
    if key is None or key is _ABSENT:
        return key
    if type(key) is tuple:  # ("short", ...) is a path that ran into a non-map
        return key if key[0] == "short" else ("kind", key[0])
    return ("kind", type(key))


class Memo:
    """Outcomes of expressions remembered across cases by the values they read (or by their
    class, see `value_classes`): CEL is pure, so the same values give the same outcome.
    Bounded: an expression's outcomes start afresh when there are `limit` of them."""

    def __init__(self, limit: int = 65536) -> None:
        self.limit = limit
        # per expression: its outcomes by key, and how its keys are grouped into classes
        self._entries: dict[Expression, tuple[dict[Any, Outcome], Classify | None]] = {}

    def entry(self, expression: Expression) -> tuple[dict[Any, Outcome], Classify | None]:
        """The expression's outcomes so far (by the key of the values it read), and how its
        keys are grouped into classes answered alike, if they are."""
        found = self._entries.get(expression)
        if found is None:
            found = self._entries[expression] = ({}, value_classes(expression))
        elif len(found[0]) >= self.limit:
            found[0].clear()
        return found

    def outcomes(self, expression: Expression) -> dict[Any, Outcome]:
        """The expression's outcomes so far, by the key of the values it read."""
        return self.entry(expression)[0]


_UNREAD = object()  # a path this case has not read yet


class Scope:
    """One case's data as the library's expressions see it, and their outcomes on it.

    With a memo, an expression runs only on values it has not met before, and then on just
    the fields it reads; without, on the whole view."""

    __slots__ = ("_keys", "_memo", "_view")

    def __init__(self, view: Mapping[str, Any], memo: Memo | None = None) -> None:
        self._view = view
        self._memo = memo
        self._keys: dict[str, Any] = {}  # the key of the value at each path read so far

    def _key_at(self, path: str, steps: tuple[str, ...]) -> Any:
        key = self._keys.get(path, _UNREAD)
        if key is _UNREAD:
            key = self._keys[path] = _at(self._view, steps)
        return key

    def _key(self, expression: Expression) -> Any:
        """The values the expression reads in this case, as a hashable key."""
        paths, steps = expression.paths, expression.steps
        if len(paths) == 1:
            return self._key_at(paths[0], steps[0])
        return tuple(map(self._key_at, paths, steps))

    def outcome(self, expression: Expression) -> Outcome:
        """The expression's value for this case, or why it has none."""
        if self._memo is None:
            return run(expression, self._view)
        outcomes, classify = self._memo.entry(expression)
        key = self._key(expression)
        if classify is not None:
            key = classify(key)
        found = outcomes.get(key)
        if found is None:
            found = outcomes[key] = run(expression, prune(self._view, expression.tree))
        return found

    def value(self, expression: Expression) -> Any:
        """The expression's value for this case; EvaluationError if it has none."""
        ok, value = self.outcome(expression)
        if not ok:
            raise EvaluationError(value)
        return value

    def holds(self, expression: Expression) -> bool:
        """Whether the expression evaluates to exactly true (one without a value does not)."""
        ok, value = self.outcome(expression)
        return ok and value is True

    def all_hold(self, expressions: Iterable[Expression]) -> bool:
        """Whether every expression holds (in order, stopping at the first that does not)."""
        return all(map(self.holds, expressions))

    def any_holds(self, expressions: Iterable[Expression]) -> bool:
        """Whether some expression holds (in order, stopping at the first that does)."""
        return any(map(self.holds, expressions))
