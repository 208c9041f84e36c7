"""Jinja2 templates for the documents: the package's defaults, overridable per library.

A library's templates are untrusted code. Every template, the package's and a library's,
renders in Jinja2's ImmutableSandboxedEnvironment, from plain data only (dicts, lists,
strings, numbers, booleans, None: `tier2.core.documents` builds it, the case's text already
neutralised for the document), so a template cannot reach Python's internals (`__class__`,
`__globals__`, a callable's code), change the data, or read a file:

- a library's template is read only from its own `templates/` folder: a symbolic link there,
  or an `include`, `extends` or `import` of a name outside it (`../x`, `/etc/x`), is a load
  error naming the file; a name computed while rendering is held to the same rule;
- a library's template is bounded: at most MAX_STEPS loop iterations and calls for one
  document, no value it computes (`~`, `+`, `*`, `**`, `%`, the filters that grow text)
  longer than MAX_SIZE characters or items, and no document longer than MAX_SIZE
  characters. String methods that grow text (`center`, `ljust`, `replace`, `join`,
  `format`, ...) are not available: the filters of the same names are, checked;
- a template that fails on a case raises TemplateRenderError (a DocumentError: the core's
  word for a document that cannot be written), naming the template, the line and the
  problem, never a Python exception of its own.
"""

from __future__ import annotations

import os
import re
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from datetime import datetime
from itertools import compress, repeat
from pathlib import Path
from types import BuiltinMethodType
from typing import Any, cast

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from tier2.core.documents import DocumentError, md_line
from tier2.core.model import describe_params
from tier2.core.money import amount_text

TEMPLATE_NAMES = ("note.md", "handoff.md", "guidance.md", "reply.md")
MAX_STEPS = 100_000  # loop iterations and calls in one document (a library's templates)
MAX_SIZE = 1_000_000  # characters (or items) of a value a template computes, or a document

_PACKAGE_TEMPLATES = Path(__file__).with_name("templates")


class TemplateLoadError(ValueError):
    """A template that does not compile, or that reads outside its library's templates
    folder."""


class TemplateRenderError(DocumentError):
    """A document whose template failed on a case: the template, its line and the problem."""

    def __init__(self, template: str, problem: str) -> None:
        super().__init__(f"{template}: {problem}" if template else problem)
        self.template = template
        self.problem = problem


# --------------------------------------------------------------------------- reading


def _parts(name: str) -> list[str]:
    """The folders and file of a template name, refused if it could lead outside the
    templates folder."""
    if name.startswith("/") or "\\" in name or ".." in name.split("/"):
        raise TemplateLoadError(f"{name!r} is outside the library's templates folder")
    return [p for p in name.split("/") if p not in ("", ".")]


def _refuse_links(root: Path) -> None:
    """A library's templates folder holds only its own files: no symbolic link, anywhere."""
    if root.is_symlink():
        raise TemplateLoadError(
            "is a symbolic link; a library's templates must be files in its own folder"
        )
    for folder, dirs, files in os.walk(root):
        for entry in (*dirs, *files):
            path = Path(folder, entry)
            if path.is_symlink():
                raise TemplateLoadError(
                    f"{path.relative_to(root).as_posix()}: is a symbolic link; a library's "
                    "templates must be files in its own folder"
                )


class _Loader(jinja2.BaseLoader):
    """The library's templates folder first, then the package's defaults. A template from the
    library is checked (what it includes) and bounded (see the module) as it is compiled."""

    def __init__(self, override: Path | None) -> None:
        self.override = override
        # The paths of `case` the templates compiled so far read (None: all of it).
        self.case_reads: set[tuple[str, ...]] | None = set()

    def library_file(self, name: str) -> Path | None:
        """The library's own file for a template name, if it has one."""
        if self.override is None:
            return None
        path = self.override
        for part in _parts(name):
            path = path / part
            if path.is_symlink():
                raise TemplateLoadError(f"{name}: is a symbolic link")
        if not path.is_file():
            return None
        if not os.path.realpath(path).startswith(os.path.realpath(self.override) + os.sep):
            raise TemplateLoadError(f"{name!r} is outside the library's templates folder")
        return path

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        path = self.library_file(template)
        if path is None:
            path = _PACKAGE_TEMPLATES.joinpath(*_parts(template))
            if not path.is_file():
                raise jinja2.TemplateNotFound(template)
        return path.read_text(encoding="utf-8"), str(path), lambda: True

    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        """Compile a template from its checked, bounded syntax tree (Environment.parse and
        compile, both public; this loader is the environment's only one, so no ChoiceLoader
        bypasses this method)."""
        source, filename, uptodate = self.get_source(environment, name)
        tree = environment.parse(source, name, filename)
        reads = _reads(tree, "case")
        if reads is None or self.case_reads is None:
            self.case_reads = None
        else:
            self.case_reads |= reads
        if self.library_file(name) is not None:
            _check_references(tree, name)
            _Bounded(environment).visit(tree)
        code = environment.compile(tree, name, filename)
        return environment.template_class.from_code(environment, code, globals or {}, uptodate)


_VERBS = {
    nodes.Extends: "extends",
    nodes.Include: "includes",
    nodes.Import: "imports",
    nodes.FromImport: "imports",
}
_REFERENCES = tuple(_VERBS)


def _check_references(tree: nodes.Template, name: str) -> None:
    """Each template a library's template names (`include`, `extends`, `import`) must be
    inside the templates folder."""
    for node in tree.find_all(_REFERENCES):
        target = cast(Any, node).template
        names = target.items if isinstance(target, nodes.List | nodes.Tuple) else [target]
        for item in names:
            if isinstance(item, nodes.Const) and isinstance(item.value, str):
                try:
                    _parts(item.value)
                except TemplateLoadError as exc:
                    verb = _VERBS[type(node)]
                    raise TemplateLoadError(f"{name} line {node.lineno}: {verb} {exc}") from None


def _reads(tree: nodes.Template, name: str) -> set[tuple[str, ...]] | None:
    """The paths of the variable `name` a template reads (`case.ticket.subject`: ("ticket",
    "subject"), two keys at most), or None when it reads the variable as a whole (passes it
    on, loops over it, filters it, or looks a key up by a computed name)."""
    reads: set[tuple[str, ...]] = set()
    pending: list[nodes.Node] = [tree]
    while pending:
        node = pending.pop()
        path: list[str] = []
        base = node
        while True:
            if isinstance(base, nodes.Getattr):
                path.append(base.attr)
            elif isinstance(base, nodes.Getitem) and isinstance(base.arg, nodes.Const):
                path.append(str(base.arg.value))
            else:
                break
            base = base.node
        if isinstance(base, nodes.Name) and base.name == name and base.ctx == "load":
            if not path:
                return None
            reads.add(tuple(reversed(path))[:2])
        else:
            pending.extend(base.iter_child_nodes())
    return reads


# --------------------------------------------------------------------------- bounds


_UNBOUNDED = repeat(True)  # (the package's own templates are not counted)


class _Limits(threading.local):
    """What the library's template being rendered in this thread may still use."""

    def __init__(self) -> None:
        self.steps: Iterator[bool] = _UNBOUNDED
        self.chars = 0


_limits = _Limits()


def _too_large(size: int, what: str = "a value longer than") -> None:
    if size > MAX_SIZE:
        raise SecurityError(f"{what} {MAX_SIZE:,} (characters, or items of a list)")


@jinja2.pass_context  # (never folded into a constant when the template compiles)
def _loop(context: Any, value: Any) -> Iterator[Any]:
    """What every `for` of a library's template iterates: a step for each item."""
    return compress(value, _limits.steps)


@jinja2.pass_context
def _sized(context: Any, value: Any) -> Any:
    """What every `~` of a library's template makes: bounded."""
    _too_large(len(value))
    return value


@jinja2.pass_context
def _written(context: Any, value: Any) -> Any:
    """What a library's template writes: counted towards the document's length."""
    _limits.chars += len(value) if isinstance(value, str) else len(str(value))
    _too_large(_limits.chars, "a document longer than")
    return value


class _Bounded(NodeTransformer):
    """A library's template, with its loops, joins and output counted (see the module)."""

    def __init__(self, environment: jinja2.Environment) -> None:
        self.environment = environment

    def _filter(self, node: nodes.Node, name: str) -> nodes.Filter:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        return cast(nodes.Filter, wrapped.set_environment(self.environment))

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._filter(node.iter, "_tier2_loop")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._filter(node, "_tier2_sized")

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [self._filter(n, "_tier2_written") for n in node.nodes]
        return node


_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_format(text: Any) -> None:
    """A `%` format may not ask for a width or precision that makes a huge string."""
    for m in _FORMAT_SPEC.finditer(str(text)):
        for number in m.group(1, 2):
            if number == "*" or (number is not None and int(number) > MAX_SIZE):
                raise SecurityError(f"a format width of more than {MAX_SIZE:,}")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            _too_large(len(seq) * times)


def _check_power(left: Any, right: Any) -> None:
    big = isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
    if big and abs(left).bit_length() * right > 64 * 1024:
        raise SecurityError("a power of more than 65,536 bits")


# What a template reads most, and the sandbox allows: `loop`'s attributes, and the string
# methods that cannot make a long string.
_LOOP = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0"}
    | {"previtem", "nextitem", "cycle", "changed"}
)
_STR = frozenset(
    {"strip", "lstrip", "rstrip", "lower", "upper", "title", "capitalize", "casefold"}
    | {"startswith", "endswith", "split", "rsplit", "splitlines", "count", "find", "rfind"}
    | {"isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "removeprefix"}
    | {"removesuffix"}
)
# String methods that can make a long string from a short one: the filters of the same names
# are bounded instead.
_UNSAFE_STR_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map", "replace"}
    | {"join", "translate", "maketrans", "encode"}
)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with `x.y` on a dict looking up the key first, `*`, `**`,
    `+` and `%` bounded, every call counted, and a template's globals one plain dict."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        elif (kind is LoopContext and attribute in _LOOP) or (kind is str and attribute in _STR):
            return getattr(obj, attribute)  # (what the sandbox would allow, found sooner)
        elif isinstance(obj, str) and attribute in _UNSAFE_STR_METHODS:
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str) and type(argument) is str and argument in _UNSAFE_STR_METHODS:
            return self.unsafe_undefined(obj, argument)
        return super().getitem(obj, argument)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, type):  # no class's attributes (`dict.mro`, `cycler.__init__`)
            return False
        if isinstance(obj, int) and attr in ("to_bytes", "from_bytes"):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(
        __self,  # (Jinja2's signature: any keyword argument may reach the callee)
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if next(_limits.steps, False) is False:
            raise SecurityError(f"more than {MAX_STEPS:,} loop iterations and calls")
        if type(__obj) is BuiltinMethodType:  # a method the sandbox let the template read
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        result = self.binop_table[operator](left, right)
        if isinstance(result, str | list | tuple):
            _too_large(len(result))
        return result

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """The environment's globals overlaid by the template's, flattened into one dict (not
        Jinja2's ChainMap): `Template.render` copies them into each context, a dict quickly.
        The templates are loaded once, after the globals are set."""
        return {**self.globals, **(d or {})}


# --------------------------------------------------------------------------- filters


def _money(value: Any) -> str:
    return "" if value is None else amount_text(float(value))


_ACTION_KEYS = ("type", "amount", "currency")


def _params(action: Any) -> str:
    """An action's parameters in words, after its type and amount (` to gift_card, items A1,
    A2`); empty when it has none."""
    if not isinstance(action, Mapping):
        return ""
    return describe_params(tuple((k, v) for k, v in action.items() if k not in _ACTION_KEYS))


def _datetime(value: Any, format: str = "%Y-%m-%d %H:%M %z") -> str:
    """An ISO 8601 time (as the data gives times) in `format` (strftime's)."""
    return "" if value is None else datetime.fromisoformat(str(value)).strftime(format)


# Jinja2's own filters, which those below bound.
_JINJA2_FILTERS: dict[str, Any] = dict(jinja2.Environment().filters)


@jinja2.pass_eval_context
def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
    text, old_text, new_text = str(s), str(old), str(new)
    times = text.count(old_text) if old_text else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    _too_large(len(text) + times * max(0, len(new_text) - len(old_text)))
    return _JINJA2_FILTERS["replace"](eval_ctx, s, old, new, count)


def _center(value: Any, width: Any = 80) -> Any:
    _too_large(width if isinstance(width, int) else 0)
    return _JINJA2_FILTERS["center"](value, width)


def _indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
    step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _too_large(len(str(s)) + step * (str(s).count("\n") + 1))
    return _JINJA2_FILTERS["indent"](s, width, first, blank)


@jinja2.pass_environment
def _wordwrap(environment: Any, s: Any, width: Any = 79, *args: Any, **kwargs: Any) -> Any:
    wrapstring = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
    lines = len(str(s)) // max(width if isinstance(width, int) else 1, 1) + 1
    _too_large(len(str(s)) + lines * len(str(wrapstring or "\n")))
    return _JINJA2_FILTERS["wordwrap"](environment, s, width, *args, **kwargs)


def _format(value: Any, *args: Any, **kwargs: Any) -> Any:
    _check_format(value)
    result = _JINJA2_FILTERS["format"](value, *args, **kwargs)
    _too_large(len(result))
    return result


@jinja2.pass_eval_context
def _join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
    items = list(value)
    if attribute is not None:
        items = [_attribute(eval_ctx.environment, item, attribute) for item in items]
    _too_large(sum(len(i) if isinstance(i, str) else len(str(i)) for i in items))
    _too_large(len(str(d)) * len(items))
    return _JINJA2_FILTERS["join"](eval_ctx, items, d)


def _attribute(env: jinja2.Environment, item: Any, attribute: Any) -> Any:
    """`item.a.b` as Jinja2's `attribute=` arguments read it (a number is an index)."""
    for part in str(attribute).split("."):
        item = env.getitem(item, int(part) if part.isdigit() else part)
    return item


def _slice(value: Any, slices: Any, fill_with: Any = None) -> Any:
    _too_large(slices if isinstance(slices, int) else 0)
    return _JINJA2_FILTERS["slice"](value, slices, fill_with)


def _batch(value: Any, linecount: Any, fill_with: Any = None) -> Any:
    _too_large(linecount if isinstance(linecount, int) and fill_with is not None else 0)
    return _JINJA2_FILTERS["batch"](value, linecount, fill_with)


@jinja2.pass_eval_context
def _tojson(eval_ctx: Any, value: Any, indent: Any = None) -> Any:
    if indent is not None and len(indent if isinstance(indent, str) else " " * indent) > 16:
        raise SecurityError("a JSON indent of more than 16")
    return _JINJA2_FILTERS["tojson"](eval_ctx, value, indent)


# Jinja2's filters that can make a long string or list from a short one, with their arguments
# checked first.
_BOUNDED_FILTERS = {
    "replace": _replace,
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "format": _format,
    "join": _join,
    "slice": _slice,
    "batch": _batch,
    "tojson": _tojson,
}


def _environment(override: Path | None) -> _Sandbox:
    env = _Sandbox(
        loader=_Loader(override),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # compiled once on load: no stat() per {% include %}
    )
    del env.globals["lipsum"]  # (it writes as much text as it is asked for)
    del env.filters["random"]  # (not deterministic)
    env.filters.update(_BOUNDED_FILTERS)
    env.filters.update(
        money=_money,
        params=_params,
        datetime=_datetime,
        _tier2_loop=_loop,
        _tier2_sized=_sized,
        _tier2_written=_written,
    )
    return env


# --------------------------------------------------------------------------- rendering


def _problem(exc: BaseException) -> tuple[str, str]:
    """The template file and line an exception came from, and what it was."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    where = "" if not frames else f"{Path(frames[-1].filename).name} line {frames[-1].lineno}"
    message = str(exc) or type(exc).__name__
    return where, f"{type(exc).__name__}: {message}"


class _Templates:
    """Templates compiled once; rendering a pure function of the data it is given."""

    def __init__(self, names: tuple[str, ...], override: Path | None) -> None:
        if override is not None and (override.is_symlink() or override.is_dir()):
            _refuse_links(override)
        else:
            override = None
        self._env = _environment(override)
        self._templates: dict[str, jinja2.Template] = {}
        self._bounded: set[str] = set()
        loader = cast(_Loader, self._env.loader)
        try:
            for name in names:
                self._templates[name] = self._env.get_template(name + ".j2")
                if loader.library_file(name + ".j2") is not None:
                    self._bounded.add(name)
            # Every other template one may include, compiled now: the package's, and the
            # library's own (so that all that can be rendered is checked, and `case_reads`
            # is complete).
            for path in sorted(_PACKAGE_TEMPLATES.glob("*.j2")):
                self._env.get_template(path.name)
            if override is not None:
                for path in sorted(override.rglob("*.j2")):
                    self._env.get_template(path.relative_to(override).as_posix())
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateLoadError(
                f"{exc.name or exc.filename}: line {exc.lineno}: {exc.message}"
            ) from None
        reads = loader.case_reads
        # What the templates read of the case (None: all of it): the documents' data has only
        # that (see tier2.core.documents).
        self.case_reads = None if reads is None else frozenset(reads)

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render one document from plain data; TemplateRenderError if it fails."""
        if name in self._bounded:
            return self._render_bounded(name, context)
        try:
            return self._templates[name].render(context)
        except Exception as exc:  # whatever a template does wrong: the library's failure
            raise _render_error(name, exc) from None

    def _render_bounded(self, name: str, context: Mapping[str, Any]) -> str:
        """A library's template, within MAX_STEPS and MAX_SIZE."""
        _limits.steps, _limits.chars = repeat(True, MAX_STEPS), 0
        try:
            text = self._templates[name].render(context)
            exhausted = next(_limits.steps, False) is False
        except Exception as exc:
            raise _render_error(name, exc) from None
        finally:
            _limits.steps = _UNBOUNDED
        if exhausted:
            raise TemplateRenderError(
                f"{name}.j2", f"more than {MAX_STEPS:,} loop iterations and calls"
            )
        if len(text) > MAX_SIZE:
            raise TemplateRenderError(f"{name}.j2", f"longer than {MAX_SIZE:,} characters")
        return text


def _render_error(name: str, exc: Exception) -> TemplateRenderError:
    where, problem = _problem(exc)
    return TemplateRenderError(where or f"{name}.j2", problem)


class JinjaTemplates(_Templates):
    """The documents' templates: the package's, overridden by those in a library's
    `templates/` folder."""

    def __init__(self, override: Path | None = None) -> None:
        super().__init__(TEMPLATE_NAMES, override)


class SlaNotes:
    """The SLA monitor's note on a ticket it escalates (`sla.md.j2`), from plain data: text
    escaped for Markdown, times as ISO 8601 text (the `datetime` filter formats them)."""

    def __init__(self) -> None:
        self._templates = _Templates(("sla.md",), None)

    def render(self, **context: Any) -> str:
        plain = {
            k: md_line(v) if isinstance(v, str) else v.isoformat() if isinstance(v, datetime) else v
            for k, v in context.items()
        }
        return self._templates.render("sla.md", plain)
