"""The overview's figures kept between requests: fresh while the store is unchanged, served
stale for at most max_age while they are computed again, recomputed after."""

from __future__ import annotations

from typing import Any

from tier2.entrypoints.http.console._figures import FigureCache


class World:
    def __init__(self) -> None:
        self.mark = 1
        self.now = 0.0
        self.computed = 0

    def compute(self) -> dict[str, Any]:
        self.computed += 1
        return {"mark": self.mark}

    def cache(self) -> FigureCache:
        return FigureCache(lambda: (self.mark,), max_age=60, clock=lambda: self.now)


def test_figures_are_computed_once_while_the_store_is_unchanged() -> None:
    """Asked again with the same mark, the kept figures are served without computing."""
    w = World()
    cache = w.cache()
    first = cache.get("p", w.compute)
    w.now = 3600
    assert cache.get("p", w.compute) is first and w.computed == 1


def test_a_changed_store_serves_young_figures_while_they_are_computed_again() -> None:
    """Changed within max_age: the kept figures now, fresh ones computed in the background."""
    w = World()
    cache = w.cache()
    cache.get("p", w.compute)
    w.mark, w.now = 2, 30
    stale = cache.get("p", w.compute)
    assert stale.figures == {"mark": 1}
    cache.settle()  # the refresh of "p" ran on its own thread
    assert cache.get("p", w.compute).figures == {"mark": 2} and w.computed == 2


def test_old_figures_of_a_changed_store_are_computed_before_they_are_served() -> None:
    """Past max_age, a changed store's figures are computed at once."""
    w = World()
    cache = w.cache()
    cache.get("p", w.compute)
    w.mark, w.now = 2, 61
    assert cache.get("p", w.compute).figures == {"mark": 2}


def test_periods_are_kept_apart_and_the_oldest_forgotten() -> None:
    """Each period has its own figures; past `keep` periods the least recent is dropped."""
    w = World()
    cache = FigureCache(lambda: (w.mark,), keep=2, clock=lambda: w.now)
    cache.get("a", w.compute)
    cache.get("b", w.compute)
    cache.get("c", w.compute)
    assert w.computed == 3
    cache.get("a", w.compute)
    assert w.computed == 4
