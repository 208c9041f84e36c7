"""CEL, compiled once on load and evaluated against one case's plain-data view.

The standard Common Expression Language (via the `common-expression-language` package) is
safe and not Turing-complete: no loops, no I/O, no access to Python objects. A library is
still untrusted input, so an expression is bounded when it is compiled (its length, its
nesting, its comprehensions inside comprehensions, the functions it calls) and when it runs
(the lists it may loop over).

Evaluating an expression on a case has one of three outcomes: a value; *absent* (it reads a
field the case does not have, or has as null: the handbook's "a condition on a field that
is absent is false"); or *failed* (anything else: a type the expression cannot take, a
division by zero, a list too long). A failed clause is neither true nor false: the stage
that reads it fails closed (see `ClauseFailed`).

An `Expression` is an immutable compiled program; `run` evaluates one against plain data. A
`Scope` is one case's data; given a `Memo` (a library owns one), it evaluates an expression
only on values the memo has not met, as CEL gives the same outcome for the same values.
"""

from __future__ import annotations

import decimal
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import cel


class ExpressionError(ValueError):
    """An expression that does not compile."""


class EvaluationError(ValueError):
    """An expression that has no value on this case: `absent` when it reads a field the case
    does not have (or has as null), else it failed."""

    def __init__(self, why: str, *, absent: bool = False) -> None:
        super().__init__(why)
        self.absent = absent


# What a library expression may be (checked when it is compiled) and may loop over (checked
# when it runs): well above what a policy needs, well below what hurts.
MAX_SOURCE = 4000  # characters
MAX_NESTING = 24  # brackets inside brackets
MAX_LOOP_NESTING = 2  # comprehensions (all, exists, map, ...) inside comprehensions
MAX_LOOPS = 2  # comprehensions in one expression, nested or one after the other
MAX_LIST = 100  # elements of a list (or keys of a map) an expression with a comprehension
# reads, and of a list it writes itself


class _BadArguments:
    """What an extension function returns for arguments it cannot take: CEL cannot convert
    it, so the call fails like any type error (a raised exception would also be printed).
    `why` says what was wrong (see `run`)."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


_BAD = _BadArguments("arguments it cannot take (numbers expected)")


def _numbers(xs: tuple[Any, ...]) -> list[float] | None:
    """The arguments as numbers (one list argument is cel-go's list form); None if they are not."""
    items = xs[0] if len(xs) == 1 and isinstance(xs[0], list) else list(xs)
    if not items or not all(type(x) in (int, float) for x in items):
        return None
    return [float(x) for x in items]


def _ceil(x: Any) -> Any:
    return float(math.ceil(x)) if type(x) in (int, float) and math.isfinite(x) else _BAD


def _floor(x: Any) -> Any:
    return float(math.floor(x)) if type(x) in (int, float) and math.isfinite(x) else _BAD


def _least(*xs: Any) -> Any:
    numbers = _numbers(xs)
    return _BAD if numbers is None else min(numbers)


def _greatest(*xs: Any) -> Any:
    numbers = _numbers(xs)
    return _BAD if numbers is None else max(numbers)


_SUM = decimal.Context(prec=800)  # digits enough to add any floats exactly


def _a_list(xs: tuple[Any, ...], count: int) -> Any:
    """Why the arguments are not `count` lists of at most MAX_LIST elements (a _BadArguments),
    or None if they are."""
    if len(xs) != count or not all(type(x) is list for x in xs):
        return _BadArguments(
            f"arguments it cannot take ({'a list' if count == 1 else 'lists'} expected)"
        )
    longest = max(len(x) for x in xs)
    if longest > MAX_LIST:
        return _BadArguments(f"a list of {longest} elements; at most {MAX_LIST}")
    return None


def _sum(*xs: Any) -> Any:
    """lists.sum(list): the exact decimal sum of the numbers (each read as its shortest
    decimal), as the nearest float; 0.0 for an empty list."""
    bad = _a_list(xs, 1)
    if bad is not None:
        return bad
    total = decimal.Decimal(0)
    for x in xs[0]:
        if type(x) not in (int, float) or not math.isfinite(x):
            return _BadArguments("arguments it cannot take (a list of numbers expected)")
        total = _SUM.add(total, decimal.Decimal(repr(x)))
    out = float(total)
    return out if math.isfinite(out) else _BadArguments("a sum beyond the largest number")


def _zip(*xs: Any) -> Any:
    """lists.zip(a, b): [[a[0], b[0]], [a[1], b[1]], ...]; lists of different length fail."""
    bad = _a_list(xs, 2)
    if bad is not None:
        return bad
    a, b = xs
    if len(a) != len(b):
        return _BadArguments(f"lists of different length ({len(a)} and {len(b)})")
    return [[x, y] for x, y in zip(a, b, strict=True)]


def _index(*xs: Any) -> Any:
    """lists.index(list_of_maps, "key"): each element by its `key` value (a string); an
    element without one, or two with the same, fail."""
    if len(xs) != 2 or type(xs[1]) is not str:
        return _BadArguments("arguments it cannot take (a list of maps and a key expected)")
    bad = _a_list(xs[:1], 1)
    if bad is not None:
        return bad
    items, key = xs
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        value = item.get(key) if type(item) is dict else None
        if type(value) is not str:
            return _BadArguments(f"element {i} has no string {key!r}")
        if value in out:
            return _BadArguments(f"two elements have {key} {value!r}")
        out[value] = item
    return out


def _distinct(*xs: Any) -> Any:
    """lists.distinct(list): the strings or numbers without repeats, first occurrence kept."""
    bad = _a_list(xs, 1)
    if bad is not None:
        return bad
    seen: set[tuple[bool, Any]] = set()
    out: list[Any] = []
    for x in xs[0]:
        if type(x) not in (str, int, float):
            return _BadArguments("arguments it cannot take (a list of strings or numbers expected)")
        key = (type(x) is str, x)
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out


# The names of cel-go's math extension, so libraries stay portable to other CEL runtimes; and
# tier2's list functions, namespaced alike.
FUNCTIONS: Mapping[str, Any] = {
    "math.ceil": _ceil,
    "math.floor": _floor,
    "math.least": _least,
    "math.greatest": _greatest,
    "lists.sum": _sum,
    "lists.zip": _zip,
    "lists.index": _index,
    "lists.distinct": _distinct,
}
_NAMESPACES = {name.rsplit(".", 1)[1]: name.rsplit(".", 1)[0] for name in FUNCTIONS}
_SHORT_NAMES = frozenset(_NAMESPACES)  # as CEL reports calls
# The functions and operators of the CEL runtime's standard library, as `references()` names
# them; with the extensions above, the only calls an expression may make.
STANDARD_FUNCTIONS = frozenset(
    {
        "!_", "-_", "_+_", "_-_", "_*_", "_/_", "_%_", "_==_", "_!=_", "_<_", "_<=_", "_>_",
        "_>=_", "_&&_", "_||_", "_?_:_", "_[_]", "@in", "@not_strictly_false",
        "size", "contains", "startsWith", "endsWith", "matches", "type", "dyn",
        "int", "uint", "double", "string", "bytes", "timestamp", "duration",
        "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip
# A call of an extension: `math.least(` (its namespace, standing alone) or `least(`/`x.least(`
_EXTENSION_CALL = re.compile(
    r"(?:(?<![\w.])(\w+)\.|(?<!\w))(" + "|".join(sorted(_SHORT_NAMES)) + r")\s*\("
)
_LOOP = re.compile(r"\.(all|exists|exists_one|map|filter)\s*\(")


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_PATH = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\s*\()?")
_BOUND = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")
_KEYWORDS = {"true", "false", "null", "in", "has", "timestamp", "duration", "int", "double",
             "string", "size", "math", "lists", "type", "bool", "uint", "dyn"}  # fmt: skip


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


def bound_names(source: str) -> set[str]:
    """The comprehension variables an expression names (`i` in `xs.all(i, i > 0)`)."""
    return set(_BOUND.findall(_STRING.sub('""', source)))


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
    loops: bool = False  # whether it has a comprehension (so list sizes bound its cost)
    roots: tuple[str, ...] = ()  # the top-level names it reads, in the order of `paths`


def compile_expression(source: str) -> Expression:
    """Compile CEL source once; raise ExpressionError with CEL's own message if it is not valid."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    _check_plain_text(source)
    text = _STRING.sub('""', source)  # string literals blanked, for the checks below
    loops = _check_shape(source, text)
    try:
        program = cel.compile(source)
    except Exception as exc:
        raise ExpressionError(_first_line(str(exc))) from None
    references = program.references()
    calls = set(references["functions"])
    _check_calls(text, calls)
    paths = tuple(sorted(field_paths(source)))
    _check_names(text, paths, set(references["variables"]))
    return Expression(
        source=source,
        program=program,
        paths=paths,
        calls=bool(_SHORT_NAMES & calls),
        steps=tuple(tuple(p.split(".")) for p in paths),
        tree=path_tree(paths),
        loops=loops,
        roots=tuple(dict.fromkeys(p.split(".")[0] for p in paths)),
    )


_VIEW_NAMES = frozenset(
    {"case", "received_at", "now", "ticket", "handoff", "request", "customer", "facts", "signals"}
)
_TYPE_NAMES = frozenset({"int", "uint", "double", "string", "bool", "bytes", "list", "map",
                         "null_type", "type", "dyn", "math", "lists"})  # fmt: skip


def _check_plain_text(source: str) -> None:
    """Refuse comments and raw, byte or triple-quoted strings: what an expression reads is
    found in its text, so its text must say it plainly."""
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c in "\"'":
            if source.startswith(c * 3, i):
                raise ExpressionError("triple-quoted strings are not allowed")
            i += 1
            while i < n and source[i] != c:  # to the closing quote, past escapes
                i += 2 if source[i] == "\\" else 1
        elif c in "rRbB" and (i == 0 or not (source[i - 1].isalnum() or source[i - 1] in "_.")):
            j = i
            while j < n and source[j] in "rRbB":
                j += 1
            if j < n and source[j] in "\"'" and j - i <= 2:
                raise ExpressionError("raw and byte strings are not allowed")
        elif source.startswith("//", i):
            raise ExpressionError("comments (//) are not allowed")
        i += 1


def _check_names(text: str, paths: tuple[str, ...], variables: set[str]) -> None:
    """Refuse a comprehension variable named like a field of the case, and any name CEL
    reads that the expression's text does not show as a field it reads."""
    bound = set(_BOUND.findall(text))
    shadowing = sorted(bound & _VIEW_NAMES)
    if shadowing:
        raise ExpressionError(f"a comprehension variable is named like a field: {shadowing[0]}")
    unseen = variables - {p.split(".")[0] for p in paths} - bound - _TYPE_NAMES
    if unseen:
        raise ExpressionError(f"cannot tell which fields it reads: {', '.join(sorted(unseen))}")


def _check_shape(source: str, text: str) -> bool:
    """Refuse an expression too long or too deeply nested for the parser and the evaluator
    (before CEL parses it), or whose comprehensions could multiply work: at most two, only
    `all`/`exists`/`exists_one` inside one another (a `map` or `filter` inside or around
    another makes lists of lists), and, with any, no list it writes of more than MAX_LIST
    elements. Whether it loops over lists."""
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"longer than {MAX_SOURCE} characters ({len(source)})")
    deepest, deepest_loop, longest = _scan(text)
    loops = len(_LOOP.findall(text))
    if deepest > MAX_NESTING:
        raise ExpressionError(f"nested {deepest} deep; at most {MAX_NESTING}")
    if loops > MAX_LOOPS:
        raise ExpressionError(
            f"{loops} comprehensions (all, exists, map, filter); at most {MAX_LOOPS}"
        )
    if deepest_loop > MAX_LOOP_NESTING:
        raise ExpressionError(
            f"{deepest_loop} comprehensions (all, exists, map, filter) inside each other; "
            f"at most {MAX_LOOP_NESTING}"
        )
    if loops and longest > MAX_LIST:
        raise ExpressionError(
            f"a list of {longest} elements beside a comprehension; at most {MAX_LIST}"
        )
    return loops > 0


def _scan(text: str) -> tuple[int, int, int]:
    """The deepest nesting of brackets and of comprehensions, and the longest list written
    out, of an expression's text (strings blanked); a map or filter in or around another
    comprehension is refused here."""
    deepest = deepest_loop = longest = 0
    opened: list[list[Any]] = []  # each open bracket: [char, commas, comprehension or None]
    for i, char in enumerate(text):
        if char in "([{":
            start = _start_of_call(text, i) if char == "(" else i
            loop = _LOOP.match(text, start) if char == "(" else None
            if loop:
                _check_range(text, start)
            opened.append([char, 0, loop.group(1) if loop else None])
            kinds = {o[2] for o in opened if o[2]}
            nested = sum(1 for o in opened if o[2])
            if nested > 1 and _LISTS_CALL.search(text, 0, i + 1):
                raise ExpressionError(
                    "a lists function may not be called inside a comprehension inside another"
                )
            if nested > 1 and kinds & {"map", "filter"}:
                raise ExpressionError(
                    "a map or filter may not hold, or be held by, another comprehension"
                )
            deepest, deepest_loop = max(deepest, len(opened)), max(deepest_loop, nested)
        elif char == "," and opened:
            opened[-1][1] += 1
        elif char in ")]}" and opened:
            kind, commas, _ = opened.pop()
            if kind == "[":
                longest = max(longest, commas + 1)
    return deepest, deepest_loop, longest


_LISTS_CALL = re.compile(r"(?<![\w.])lists\.\w+\s*\($")  # a lists function's "(" ends here
_RANGE_CALL = re.compile(r"(?:(?<![\w.])lists\.\w+|\.filter|\.map)\s*$")


def _check_range(text: str, dot: int) -> None:
    """Refuse a comprehension over a list the expression builds itself, other than by a
    lists function or another comprehension (`(a + a + a).all(...)`): what it loops over must
    be bounded like the case's own lists."""
    end = dot - 1
    while end >= 0 and text[end].isspace():
        end -= 1
    if end < 0 or text[end] != ")":
        return  # a field, a definition, an element or a list written out
    depth, i = 0, end
    while i >= 0:
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            break
        i -= 1
    if i < 0 or not _RANGE_CALL.search(text, 0, i):
        raise ExpressionError(
            "a comprehension may only loop over a field, a definition, a list written out, "
            "or what a lists function, filter or map gives"
        )


def _start_of_call(text: str, paren: int) -> int:
    """Where `.name(` begins, for the `(` at `paren` (or `paren` if it is no method call)."""
    i = paren
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_" or text[i - 1].isspace()):
        i -= 1
    return i - 1 if i > 0 and text[i - 1] == "." else paren


def _check_calls(text: str, calls: set[str]) -> None:
    """Refuse a call to a function the runtime does not have, or an extension without its
    namespace (`math.`, `lists.`)."""
    unknown = sorted(calls - STANDARD_FUNCTIONS - _SHORT_NAMES)
    if unknown:
        raise ExpressionError(f"unknown function(s): {', '.join(unknown)}")
    for match in _EXTENSION_CALL.finditer(text):
        namespace, name = match.group(1), match.group(2)
        if namespace != _NAMESPACES[name]:
            raise ExpressionError(
                f"unknown function: {name if namespace is None else f'{namespace}.{name}'} "
                f"(did you mean {_NAMESPACES[name]}.{name}?)"
            )


def _first_line(text: str) -> str:
    text = text.strip()
    return text.replace("\n", " ") if len(text) < 300 else text[:300]


def plain(value: Any) -> Any:
    """JSON data as CEL sees JSON: every number a double (so 240 and 240.0 mix freely); a
    field that is null is absent (the contract: a field may be absent or null, alike)."""
    kind = type(value)
    if kind is int:
        return float(value)
    if kind is dict:
        return {k: plain(v) for k, v in value.items() if v is not None}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    return value


VALUE, ABSENT, FAILED = 0, 1, 2
Outcome = tuple[int, Any]  # (VALUE, the value), or (ABSENT or FAILED, why it has none)


def run(expression: Expression, data: Mapping[str, Any]) -> Outcome:
    """Evaluate an expression against plain data (converted into CEL here)."""
    bad: list[_BadArguments] = []  # what the extension functions could not take, in order
    extensions = _extensions(bad) if expression.calls else None
    try:
        converted = plain(data)
        longest = _longest_list(converted) if expression.loops else 0
    except RecursionError:
        return (FAILED, "the data it reads is nested too deep")
    if longest > MAX_LIST:
        return (FAILED, f"it loops over {longest} elements; at most {MAX_LIST}")
    try:
        return (VALUE, expression.program.execute(cel.Context(converted, functions=extensions)))
    except KeyError as exc:  # a field the case does not have (a key of a map literal: failed)
        if exc.args and exc.args[0] not in _parts(expression):
            return (FAILED, f"no key {exc}")
        return (ABSENT, f"no field {exc}")
    except Exception as exc:  # a type it cannot take, a division by zero, a failed function
        why = _first_line(str(exc))
        if why.startswith(_UNDEFINED):  # a top-level name the data lacks (functions are
            return (ABSENT, why)  # checked when the expression is compiled)
        if "_BadArguments" in why:
            why = why.split(" error:", 1)[0] + ": " + (bad[-1].why if bad else _BAD.why)
        return (FAILED, why)


_UNDEFINED = "Undefined variable or function"


def _extensions(bad: list[_BadArguments]) -> dict[str, Callable[..., Any]]:
    """The extension functions, each noting in `bad` what it could not take (CEL's error
    names only the type of what it returned)."""

    def noting(function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*xs: Any) -> Any:
            out = function(*xs)
            if type(out) is _BadArguments:
                bad.append(out)
            return out

        return call

    return {name: noting(function) for name, function in FUNCTIONS.items()}


def _parts(expression: Expression) -> set[str]:
    return {part for steps in expression.steps for part in steps}


def _longest_list(value: Any) -> int:
    """The most elements (or keys) of any list or map in the data."""
    kind = type(value)
    if kind is dict:
        return max(len(value), max(map(_longest_list, value.values()), default=0))
    if kind is list:
        return max(len(value), max(map(_longest_list, value), default=0))
    return 0


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
    if kind is float and value == 0.0 and math.copysign(1.0, value) < 0:
        return ("-0.0",)  # equal to 0.0 in Python, but 1.0 / x tells them apart
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
    """The key of the value at a path: absent (or null, which CEL sees as absent), or where
    the path ran into a non-map."""
    node: Any = view
    for depth, part in enumerate(steps):
        if type(node) is not dict:
            return ("short", depth, _frozen(node))
        node = node.get(part)
        if node is None:
            node = _ABSENT
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


class ClauseFailed(Exception):
    """A clause that is neither true nor false on this case: the stage reading it fails
    closed, naming the clause and why."""

    def __init__(self, expression: Expression, why: str) -> None:
        super().__init__(why)
        self.expression = expression
        self.why = why


def _kind_name(value: Any) -> str:
    return {str: "a string", float: "a number", int: "a number", list: "a list", dict: "a map",
            type(None): "null"}.get(type(value), type(value).__name__)  # fmt: skip


class Definition(Protocol):
    """A library's named expression, as a Scope evaluates it (see `tier2.core.library`)."""

    @property
    def name(self) -> str: ...

    @property
    def expression(self) -> Expression: ...

    def settle(self, outcome: Outcome) -> Outcome:
        """Its value from its expression's outcome (absent, or failed if not of its type)."""
        ...


class Scope:
    """One case's data as the library's expressions see it, and their outcomes on it.

    With a memo, an expression runs only on values it has not met before, and then on just
    the fields it reads; without, on the whole view.

    A definition (`definitions`, by name) is evaluated when an expression reading its name
    first runs, once for the case, and its value put into the view under its name; an
    expression reading one that has no value has none either: failed (`definition NAME:
    why`) if one it reads failed, else absent."""

    __slots__ = ("_definitions", "_keys", "_memo", "_settled", "_view")

    def __init__(
        self,
        view: dict[str, Any],
        memo: Memo | None = None,
        definitions: Mapping[str, Definition] | None = None,
    ) -> None:
        self._view = view
        self._memo = memo
        self._keys: dict[str, Any] = {}  # the key of the value at each path read so far
        self._definitions = definitions or None
        self._settled: dict[str, Outcome] = {}  # the definitions evaluated so far

    def defined(self, definition: Definition) -> Outcome:
        """The definition's outcome on this case (evaluated the first time it is asked)."""
        found = self._settled.get(definition.name)
        if found is None:
            found = definition.settle(self.outcome(definition.expression))
            self._settled[definition.name] = found
            if found[0] == VALUE:
                self._view[definition.name] = found[1]
        return found

    def _define(
        self, definitions: Mapping[str, Definition], expression: Expression
    ) -> Outcome | None:
        """Evaluate the definitions the expression reads; if one has no value, the
        expression's outcome (failed if one failed, else absent)."""
        absent: Outcome | None = None
        for name in expression.roots:
            definition = definitions.get(name)
            if definition is None:
                continue
            status, why = self.defined(definition)
            if status == FAILED:
                return (FAILED, f"definition {name}: {why}")
            if status == ABSENT and absent is None:
                absent = (ABSENT, f"definition {name}: {why}")
        return absent

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
        if self._definitions is not None:
            unset = self._define(self._definitions, expression)
            if unset is not None:
                return unset
        if self._memo is None:
            return run(expression, self._view)
        outcomes, classify = self._memo.entry(expression)
        try:
            key = self._key(expression)
        except RecursionError:
            return (FAILED, "the data it reads is nested too deep")
        if classify is not None:
            key = classify(key)
        found = outcomes.get(key)
        if found is None:
            found = outcomes[key] = run(expression, prune(self._view, expression.tree))
        return found

    def value(self, expression: Expression) -> Any:
        """The expression's value for this case; EvaluationError if it has none."""
        status, value = self.outcome(expression)
        if status != VALUE:
            raise EvaluationError(value, absent=status == ABSENT)
        return value

    def holds(self, expression: Expression) -> bool:
        """Whether the clause is true: false when it reads an absent field; ClauseFailed when
        it cannot be evaluated or its value is not a boolean."""
        status, value = self.outcome(expression)
        if status == VALUE:
            if value is True or value is False:
                return value
            raise ClauseFailed(expression, f"its value is {_kind_name(value)}, not a boolean")
        if status == ABSENT:
            return False
        raise ClauseFailed(expression, value)

    def all_hold(self, expressions: Iterable[Expression]) -> bool:
        """Whether every expression holds (in order, stopping at the first that does not)."""
        return all(map(self.holds, expressions))

    def any_holds(self, expressions: Iterable[Expression]) -> bool:
        """Whether some expression holds (in order, stopping at the first that does)."""
        return any(map(self.holds, expressions))
