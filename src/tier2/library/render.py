"""Jinja2 templates for the documents: the package's defaults, overridable per library."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_NAMES = ("note.md", "handoff.md", "guidance.md", "reply.md")


class TemplateLoadError(ValueError):
    """A template that does not compile."""


def _money(value: Any) -> str:
    return "" if value is None else f"{float(value):,.2f}"


class _Environment(jinja2.Environment):
    """`x.y` on a dict looks up the key first (the default tries an attribute, and raises);
    a template's globals are one plain dict."""

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

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """The environment's globals overlaid by the template's, flattened into one dict (not
        Jinja2's ChainMap): `Template.render` copies them into each context, a dict quickly.
        The templates are loaded once, after the globals are set."""
        return {**self.globals, **(d or {})}


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
        self._templates: dict[str, jinja2.Template] = {}
        for name in TEMPLATE_NAMES:
            try:
                self._templates[name] = env.get_template(name + ".j2")
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateLoadError(
                    f"{exc.name or name}: line {exc.lineno}: {exc.message}"
                ) from None

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render one document from plain data."""
        return self._templates[name].render(context)


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
