"""The console's what-if: `tier2 whatif DRAFT` run in a background thread of the serving
process (one at a time per console), the draft picked from the built-in libraries and the
sub-folders of `[console] drafts_dir`. Its progress and its latest result are kept in
memory (nothing is written to the store).

A draft folder is a direct child of drafts_dir named with [A-Za-z0-9._-] (not starting with
a dot); it, and every file in it, must resolve inside drafts_dir (no `..`, no symlink out).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tier2.app.whatif import Tally, summary, tally
from tier2.core.library import Library
from tier2.library.lint import lint_library
from tier2.library.loader import BUILT_IN, load_library
from tier2.store.db import make_engine
from tier2.store.whatif import count_decided, id_parts, stored_cases

PART = 2000  # cases read and decided at a time (as `tier2 whatif`)
LINT_SAMPLES = 5000
BUILTIN_PREFIX = "builtin:"
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_MAX_ENTRIES = 2000  # files a draft folder may hold (each is checked to stay inside)


class DraftError(ValueError):
    """The draft asked for is not one the console offers."""


class Busy(RuntimeError):
    """A what-if is running already."""


@dataclass(frozen=True)
class Draft:
    value: str  # what the form posts
    label: str
    spec: str  # what load_library reads


@dataclass
class WhatIfRun:
    """One what-if: its draft, who started it, its progress and its result."""

    draft: str
    by: str
    started: datetime
    phase: str = "lint"  # lint, replay, done, failed
    total: int | None = None
    done: int = 0
    library: dict[str, str] | None = None
    lint: dict[str, Any] | None = None
    lint_error: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    finished: datetime | None = None

    @property
    def running(self) -> bool:
        return self.phase in ("lint", "replay")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


@dataclass
class WhatIfs:
    """The what-if of one console: the drafts it offers, the run in progress or the latest."""

    engine: Engine
    drafts_dir: Path | None
    clock: Callable[[], datetime]
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _latest: WhatIfRun | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    # ------------------------------------------------------------------ drafts

    def _root(self) -> Path | None:
        if self.drafts_dir is None:
            return None
        root = self.drafts_dir.expanduser().resolve()
        return root if root.is_dir() else None

    def drafts(self) -> list[Draft]:
        """The built-in libraries, then the folders of drafts_dir (by name)."""
        found = [Draft(BUILTIN_PREFIX + n, f"{n} (built-in)", n) for n in BUILT_IN]
        root = self._root()
        if root is None:
            return found
        try:
            children = sorted(root.iterdir(), key=lambda p: p.name)
        except OSError:
            return found
        for child in children[:500]:
            try:
                found.append(self._folder(root, child.name))
            except DraftError:
                continue
        return found

    def _folder(self, root: Path, name: str) -> Draft:
        if not _NAME.fullmatch(name) or name.startswith("."):
            raise DraftError(f"draft {name[:60]!r}: not a folder name of drafts_dir")
        path = root / name
        if path.is_symlink() or not path.is_dir():
            raise DraftError(f"draft {name!r}: no such folder in drafts_dir")
        resolved = path.resolve()
        if resolved.parent != root:
            raise DraftError(f"draft {name!r}: not inside drafts_dir")
        return Draft(name, name, str(resolved))

    def draft(self, value: str) -> Draft:
        """The draft the form named, checked (DraftError when the console does not offer
        it)."""
        value = value.strip()
        if value.startswith(BUILTIN_PREFIX):
            name = value.removeprefix(BUILTIN_PREFIX)
            if name not in BUILT_IN:
                raise DraftError(f"draft {name[:60]!r}: no such built-in library")
            return Draft(value, f"{name} (built-in)", name)
        root = self._root()
        if root is None:
            raise DraftError("drafts are not configured ([console] drafts_dir)")
        found = self._folder(root, value)
        _contained(Path(found.spec))
        return found

    # ------------------------------------------------------------------ runs

    def latest(self) -> WhatIfRun | None:
        """A copy of the run in progress or the latest one (None: none yet)."""
        with self._lock:
            return replace(self._latest) if self._latest is not None else None

    def start(self, draft: Draft, by: str) -> WhatIfRun:
        """Start a what-if of `draft` in a background thread; Busy when one runs."""
        with self._lock:
            if self._latest is not None and self._latest.running:
                raise Busy(
                    f"a what-if of {self._latest.draft} started by {self._latest.by} is "
                    "running: wait for it to finish"
                )
            run = WhatIfRun(draft=draft.label, by=by, started=self.clock())
            self._latest = run
            thread = threading.Thread(
                target=self._run, args=(run, draft), name="tier2-whatif", daemon=True
            )
            self._thread = thread
        thread.start()
        return replace(run)

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the run in progress; whether none runs now (for
        tests)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _set(self, run: WhatIfRun, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(run, k, v)

    def _run(self, run: WhatIfRun, draft: Draft) -> None:
        try:
            library = load_library(draft.spec)
            self._set(run, library=_named(library))
            self._lint(run, library)
            self._set(run, phase="replay")
            self._replay(run, library)
        except Exception as exc:  # the page says so
            sys.stderr.write(f"tier2: console: what-if of {run.draft}: {exc}\n")
            self._set(run, phase="failed", error=_one_line(exc), finished=self.clock())

    def _lint(self, run: WhatIfRun, library: Library) -> None:
        try:
            report = lint_library(library, samples=LINT_SAMPLES)
        except Exception as exc:  # shown at the head; the replay goes on
            self._set(run, lint_error=_one_line(exc))
            return
        found = {
            "findings": len(report.findings),
            "samples": report.samples,
            "by_kind": {k: len(report.of(k)) for k in ("conflict", "can_fail", "unreachable")},
            "first": [
                {"kind": f.kind, "subject": list(f.subject), "detail": f.detail}
                for f in report.findings[:50]
            ],
        }
        self._set(run, lint=found)

    def _replay(self, run: WhatIfRun, library: Library) -> None:
        engine, own = _reader(self.engine)
        try:
            self._set(run, total=count_decided(engine))
            whole = Tally()
            for part in id_parts(engine, size=PART):  # (the ids are read a part at a time)
                whole.merge(tally(stored_cases(engine, part), library))
                with self._lock:
                    run.done += len(part)
                    run.total = max(run.total or 0, run.done)  # (cases decided meanwhile)
        finally:
            if own:
                engine.dispose()
        lint = {k: v for k, v in run.lint.items() if k != "samples"} if run.lint else None
        result = summary(whole, library=library, lint=lint)
        self._set(run, result=result, phase="done", finished=self.clock())


def _named(library: Library) -> dict[str, str]:
    return {"name": library.name, "version": library.version, "digest": library.digest}


def _reader(engine: Engine) -> tuple[Engine, bool]:
    """An engine that reads without taking SQLite's write lock (the console's own takes it
    at each transaction's start), and whether it is ours to dispose of."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine, False
    return make_engine(engine.url.render_as_string(hide_password=False), immediate=False), True


def _contained(folder: Path) -> None:
    """Every file and folder in a draft folder resolves inside it (no symlink out)."""
    seen = 0
    for where, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            seen += 1
            if seen > _MAX_ENTRIES:
                raise DraftError(f"draft {folder.name!r}: more than {_MAX_ENTRIES} files")
            if not _inside((Path(where) / name).resolve(), folder):
                raise DraftError(f"draft {folder.name!r}: {name!r} points outside the folder")
