"""Jinja2 templates for the documents: the package's defaults, overridable per library."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.nodes

TEMPLATE_NAMES = ("note.md", "handoff.md", "guidance.md", "reply.md")
# A template with one of these renders another on its own context (see JinjaTemplates)
_SHARING = (
    jinja2.nodes.Include,
    jinja2.nodes.Import,
    jinja2.nodes.FromImport,
    jinja2.nodes.Extends,
)


class TemplateLoadError(ValueError):
    """A template that does not compile."""


def _money(value: Any) -> str:
    return "" if value is None else f"{float(value):,.2f}"


class _Environment(jinja2.Environment):
    """`x.y` on a dict looks up the key first (the default tries an attribute, and raises)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        try:
            return getattr(obj, attribute)
        except AttributeError:
            return super().getattr(obj, attribute)


class JinjaTemplates:
    """Compiled once on load; rendering is a pure function of the context it is given."""

    def __init__(self, override: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override is not None and override.is_dir():
            loaders.append(jinja2.FileSystemLoader(str(override)))
        loaders.append(jinja2.PackageLoader("tier2.library", "templates"))
        env = _Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # compiled once on load: no stat() per {% include %}
        )
        env.filters["money"] = _money
        self._env = env
        self._templates: dict[str, jinja2.Template] = {}
        for name in TEMPLATE_NAMES:
            try:
                self._templates[name] = env.get_template(name + ".j2")
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateLoadError(
                    f"{exc.name or name}: line {exc.lineno}: {exc.message}"
                ) from None

        # `Template.render` copies a template's globals (a ChainMap) into every context, and
        # Context() iterates them again; only a template that reads a global needs them.
        self._globals: dict[str, dict[str, Any]] = {}
        for name, template in self._templates.items():
            source = env.loader.get_source(env, name + ".j2")[0] if env.loader else ""
            # every name the template loads (meta.find_undeclared_variables leaves globals out);
            # a template it includes, imports or extends sees this one's context: all of them
            tree = env.parse(source)
            reads = {n.name for n in tree.find_all(jinja2.nodes.Name)}
            shares = any(tree.find_all(_SHARING))
            self._globals[name] = {
                k: v for k, v in template.globals.items() if shares or k in reads
            }

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """`Template.render(context)`, without copying the globals into each context."""
        template = self._templates[name]
        env = self._env
        used = self._globals[name]
        # Context only reads its parent; the caller's dict is used as it is when it can be
        parent = {**used, **context} if used or type(context) is not dict else context
        ctx = env.context_class(env, parent, template.name, template.blocks, None)
        try:
            return env.concat(template.root_render_func(ctx))
        except Exception:
            env.handle_exception()
            raise  # handle_exception always raises (it re-raises with the template's lines)


class SlaNotes:
    """The SLA monitor's note on a ticket it escalates (`sla.md.j2`)."""

    def __init__(self) -> None:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("tier2.library", "templates"),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._template = env.get_template("sla.md.j2")

    def render(self, **context: Any) -> str:
        return self._template.render(context)
