"""`batched` (itertools has it from Python 3.12; tier2 supports 3.11)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], n: int) -> Iterator[tuple[T, ...]]:
    """Successive tuples of up to n items."""
    if n < 1:
        raise ValueError("n must be at least 1")
    it = iter(items)
    while chunk := tuple(islice(it, n)):
        yield chunk
