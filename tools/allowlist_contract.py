"""An import-linter contract type: the modules of a package may import only what is listed.

A `forbidden` contract names what may not be imported, so a new import nobody thought of
(`urllib.request`, `threading`, a database driver) passes it. This contract names what may
be imported, by top-level package or exact module, and reports every other direct import with
its line.
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class AllowlistContract(Contract):
    """Options: `source_modules` (the packages held), `allowed_modules` (a module allows
    itself and everything under it)."""

    type_name = "allowlist"

    source_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:  # noqa: ARG002
        allowed = [str(a) for a in self.allowed_modules]  # type: ignore[attr-defined]
        sources = [str(s) for s in self.source_modules]  # type: ignore[attr-defined]

        def ok(imported: str) -> bool:
            return any(imported == a or imported.startswith(a + ".") for a in allowed)

        held = {m for s in sources for m in ({s} | graph.find_descendants(s))}
        broken = []
        for importer in sorted(held):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if ok(imported):
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = ", ".join(str(d["line_number"]) for d in details) or "?"
                broken.append((importer, imported, lines))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["broken"]:
            output.print_error(f"{importer} imports {imported} (line {lines}): not allowed")
            output.new_line()
