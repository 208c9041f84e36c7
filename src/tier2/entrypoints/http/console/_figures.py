"""The overview's figures, kept between requests.

Computing the report over a million cases takes seconds; the overview is read far more
often than the store changes enough to matter. So the figures of each period asked for are
kept with the store's *mark* (the audit log's last entry, the latest resolution recorded, the
baseline's last row: three reads by index) and served while the mark is unchanged. When the
store has changed, figures younger than `max_age` are served as they are while one thread
computes them again (the page says when they were computed); older ones are computed before
the page is served. A period not asked for in a while is forgotten (at most `keep` periods).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tier2.store import models as m

Figures = dict[str, Any]


@dataclass(frozen=True)
class Kept:
    figures: Figures
    mark: tuple[Any, ...]
    computed_at: datetime  # wall clock, shown on the page
    at: float  # monotonic


def store_mark(engine: Engine) -> tuple[Any, ...]:
    """What changes when the report's figures may: every audited step (decisions, actions,
    notes, a person's acceptance, resolution and review), each recorded resolution, and the
    baseline's rows."""
    with Session(engine) as session:
        return tuple(
            session.execute(
                select(
                    select(func.max(m.AuditEntry.seq)).scalar_subquery(),
                    select(func.max(m.Case.resolved_at)).scalar_subquery(),
                    select(func.max(m.BaselineCase.id)).scalar_subquery(),
                )
            ).one()
        )


class FigureCache:
    def __init__(
        self,
        mark: Callable[[], tuple[Any, ...]],
        *,
        max_age: float = 60.0,
        keep: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mark = mark
        self.max_age = max_age
        self.keep = keep
        self.clock = clock
        self._kept: OrderedDict[Hashable, Kept] = OrderedDict()
        self._refreshing: dict[Hashable, threading.Thread] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Figures]) -> Kept:
        """The figures of `key`: kept ones while the store is unchanged (or, changed, for up to
        `max_age` seconds while they are computed again in the background), else computed."""
        mark = self.mark()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
        if kept is not None and kept.mark == mark:
            return kept
        if kept is not None and self.clock() - kept.at < self.max_age:
            self._refresh(key, compute)
            return kept
        return self._compute(key, compute, mark)

    def _compute(
        self, key: Hashable, compute: Callable[[], Figures], mark: tuple[Any, ...]
    ) -> Kept:
        kept = Kept(compute(), mark, datetime.now(UTC), self.clock())
        with self._lock:
            self._kept[key] = kept
            self._kept.move_to_end(key)
            while len(self._kept) > self.keep:
                self._kept.popitem(last=False)
        return kept

    def _refresh(self, key: Hashable, compute: Callable[[], Figures]) -> threading.Thread | None:
        def run() -> None:
            try:
                self._compute(key, compute, self.mark())
            except Exception as exc:  # the next request computes them itself, and says why
                sys.stderr.write(f"tier2: console: computing the overview's figures: {exc}\n")
            finally:
                with self._lock:
                    self._refreshing.pop(key, None)

        with self._lock:
            if key in self._refreshing:
                return None
            thread = threading.Thread(target=run, name="tier2-figures", daemon=True)
            self._refreshing[key] = thread
        thread.start()
        return thread

    def forget(self) -> None:
        """Drop every period's figures: the next request computes them."""
        with self._lock:
            self._kept.clear()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait for the figures being computed in the background (for tests, and shutdown)."""
        with self._lock:
            running = list(self._refreshing.values())
        for thread in running:
            thread.join(timeout)

    def warm(self, key: Hashable, compute: Callable[[], Figures]) -> threading.Thread | None:
        """Compute a period's figures in the background (the default overview, at start)."""
        return self._refresh(key, compute)
