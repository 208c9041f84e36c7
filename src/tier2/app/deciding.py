"""Deciding a batch of stored cases: in this process, or in a pool of worker processes.

The pipeline is pure, so a case decided in a worker is byte for byte the case decided here;
only the cost moves. `tier2 run` keeps the store's work (reads, writes, the audit chain) in
its own process and, with more than one worker, has the next batch decided while it writes
the current one.
"""

from __future__ import annotations

import ctypes
import gc
import math
import multiprocessing
import os
import select
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from itertools import repeat
from typing import Any, Protocol

import orjson

from tier2._process import alive
from tier2.app.ports import Read
from tier2.contract import (
    CaseError,
    Unit,
    Vocabulary,
    decision_json,
    decision_text,
    decision_to_dict,
    parse_case,
    parse_unit_case,
)
from tier2.core import decide
from tier2.core.library import Library
from tier2.faults import crash_point

Stored = tuple[str, dict[str, Any] | str]  # a case id and its payload (the contract's shape),
# decoded or as JSON text
Summary = dict[str, Any]  # the decision's body without its stages and escalation handoff
Decided = dict[str, tuple[Summary, str] | str]  # case id -> (summary, the body as JSON) or why not
_HEAVY = ("stages", "escalation_handoff")


def decide_payloads(library: Library, items: Sequence[Stored], now: datetime) -> Decided:
    """Each case's decision in the contract's shape (what the runner reads of it, and all of
    it encoded as the store keeps it), or why it could not be decided."""
    out: Decided = {}
    vocabulary = Vocabulary.of(library)
    for case_id, payload in items:
        try:
            parsed = parse_case(
                orjson.loads(payload) if isinstance(payload, str) else payload,
                case_id,
                vocabulary,
            )
            if isinstance(parsed, CaseError):
                raise ValueError("; ".join(parsed.lines()))
            body = decision_to_dict(decide(parsed, library, now))
            summary = {k: v for k, v in body.items() if k not in _HEAVY}
            out[case_id] = (summary, orjson.dumps(body).decode())
        except Exception as exc:  # the library failed on this case: it is reported, not lost
            out[case_id] = f"{type(exc).__name__}: {exc}"
    return out


class Decider(Protocol):
    library: Library

    def start(self, items: Sequence[Stored], now: datetime) -> Callable[[], Decided]:
        """Begin deciding; the callable waits for and returns the decisions."""
        ...

    def close(self) -> None: ...


class InProcess:
    """Decides in the calling process, at once."""

    def __init__(self, library: Library) -> None:
        self.library = library

    def start(self, items: Sequence[Stored], now: datetime) -> Callable[[], Decided]:
        result = decide_payloads(self.library, items, now)
        return lambda: result

    def close(self) -> None:
        pass


_worker_library: Library | None = None
# Libraries this process has loaded, by spec: a forked worker finds its library here (and its
# expressions' memos warm) instead of loading it again.
_loaded: dict[str, Library] = {}


_PR_SET_PDEATHSIG = 1


def _die_with(runner: int) -> None:
    """This worker ends when the runner it works for does, however that one ends. The
    kernel sends SIGKILL when the worker's parent dies (Linux; the parent is the runner's
    fork server, which the worker itself keeps alive), so a watch thread waits for the
    runner's end besides: on a pidfd, which is readable once the runner has exited, even
    while it is not yet reaped (elsewhere, by looking every second)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl here: the watch thread alone
            pass

    def watch() -> None:
        try:
            select.select([os.pidfd_open(runner)], [], [])
        except ProcessLookupError:
            pass  # gone already
        except (AttributeError, OSError):  # no pidfd here
            while alive(runner):
                threading.Event().wait(1.0)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="tier2-runner-watch", daemon=True).start()


def _load(spec: str, parent: int) -> None:
    from tier2.library.loader import load_library  # noqa: PLC0415 (in the worker only)

    _die_with(parent)
    global _worker_library  # noqa: PLW0603 (one library per worker process)
    _worker_library = _loaded.get(spec) or load_library(spec)
    gc.collect()
    gc.freeze()  # the library and the modules stay; collections walk only what a batch makes
    gc.set_threshold(20_000, 10, 10)


def _work(items: Sequence[Stored], now: datetime) -> Decided:
    assert _worker_library is not None
    half = len(items) // 2
    out = decide_payloads(_worker_library, items[:half], now)
    crash_point("worker_mid_batch")
    out.update(decide_payloads(_worker_library, items[half:], now))
    return out


DECIDED, NOT_DECIDED, BAD_INPUT = 0, 1, 2
Verdict = tuple[int, bytes]  # DECIDED and the decision's line(s), or the error line(s)
Size = tuple[int, int]  # a verdict's status and the length of what it writes


def decide_units(
    library: Library, units: Sequence[Unit], now: datetime | None, text: bool = False
) -> list[Verdict]:
    """What `tier2 decide` writes for each unit of its input, in order: the decision (a JSON
    line, or text for a person), or the lines naming what was wrong with the case or that the
    library failed on it."""
    out: list[Verdict] = []
    vocabulary = Vocabulary.of(library)
    for unit in units:
        case = parse_unit_case(unit, vocabulary)
        if isinstance(case, CaseError):
            out.append((BAD_INPUT, "".join(line + "\n" for line in case.lines()).encode()))
            continue
        try:
            decision = decide(case, library, now)
        except Exception as exc:  # a library fault, never the case's: say so, go on
            problem = f"case {case.case_id}: not decided: {type(exc).__name__}: {exc}\n"
            out.append((NOT_DECIDED, problem.encode()))
            continue
        line = decision_text(decision).encode() if text else decision_json(decision)
        out.append((DECIDED, line + b"\n"))
    return out


# The input of `decide_all`, which its forked workers find here: each is sent only where its
# chunk starts and stops, not the chunk itself. A worker writes what a chunk's verdicts say to
# a file of the chunk's own in `_folder` and sends back only their sizes, which costs less
# than sending the bytes through the pool's pipe; the parent reads the file and removes it.
_units: Sequence[Unit] = ()
_folder = ""


def _decide_range(start: int, stop: int, now: datetime | None, text: bool) -> list[Size]:
    assert _worker_library is not None
    verdicts = _joined(decide_units(_worker_library, _units[start:stop], now, text))
    with open(os.path.join(_folder, str(start)), "xb") as file:
        file.writelines(written for _, written in verdicts)
    return [(status, len(written)) for status, written in verdicts]


def _read_back(folder: str, start: int, sizes: list[Size]) -> list[Verdict]:
    """The verdicts of the chunk from `start`, from its file (which is then removed)."""
    path = os.path.join(folder, str(start))
    with open(path, "rb") as file:
        data = file.read()
    os.unlink(path)
    out: list[Verdict] = []
    at = 0
    for status, size in sizes:
        out.append((status, data[at : at + size]))
        at += size
    return out


def _joined(verdicts: list[Verdict]) -> list[Verdict]:
    """The same verdicts with each run of decisions as one: what a worker writes is a few
    large strings, not one object per case."""
    out: list[Verdict] = []
    run: list[bytes] = []
    for status, written in verdicts:
        if status == DECIDED:
            run.append(written)
            continue
        if run:
            out.append((DECIDED, b"".join(run)))
            run = []
        out.append((status, written))
    if run:
        out.append((DECIDED, b"".join(run)))
    return out


def decide_all(
    library: Library,
    spec: str,
    units: Sequence[Unit],
    now: datetime | None,
    *,
    text: bool = False,
    workers: int = 1,
    chunk: int = 500,
) -> Iterator[list[Verdict]]:
    """Every unit's verdict, a chunk at a time and in input order; with more than one worker,
    the chunks are decided in that many processes (the same verdicts, byte for byte)."""
    starts = range(0, len(units), chunk)
    if workers <= 1 or len(starts) <= 1:
        for start in starts:
            yield decide_units(library, units[start : start + chunk], now, text)
        return
    global _units, _folder  # (what the forked workers read)
    context = multiprocessing.get_context("fork")  # the workers start with library and input
    try:
        with tempfile.TemporaryDirectory(prefix="tier2-decide-") as folder:
            _loaded[spec], _units, _folder = library, units, folder
            with ProcessPoolExecutor(
                min(workers, len(starts)),
                mp_context=context,
                initializer=_load,
                initargs=(spec, os.getpid()),
            ) as pool:
                stops = [start + chunk for start in starts]
                sizes = pool.map(_decide_range, starts, stops, repeat(now), repeat(text))
                for start, sized in zip(starts, sizes, strict=True):
                    yield _read_back(folder, start, sized)
    finally:
        _units, _folder = (), ""


class WorkerPool:
    """Decides in `workers` processes, each with the library loaded from the same spec.

    Each worker loads the library itself. A worker that dies (killed, out of memory) breaks
    the pool: what it had is decided in the runner's own process (see `Ahead`), and the
    next batch goes to a new pool.
    """

    def __init__(self, library: Library, spec: str, workers: int) -> None:
        self.library = library
        self.workers = workers
        self.spec = spec
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # Workers come from a fork server, not from this process: a runner has threads (its
        # lease's heartbeat), and a fork taken while one of them holds a lock (the store's
        # connection pool, say) leaves that lock held forever in the child.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["tier2.app.deciding", "tier2.library.loader"])
        return ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_load,
            initargs=(self.spec, os.getpid()),
        )

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        try:
            return self.pool.submit(fn, *args)
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            return self.pool.submit(fn, *args)

    def start(self, items: Sequence[Stored], now: datetime) -> Callable[[], Decided]:
        size = max(1, math.ceil(len(items) / self.workers))
        futures = [
            self._submit(_work, items[i : i + size], now) for i in range(0, len(items), size)
        ]

        def result() -> Decided:
            out: Decided = {}
            for future in futures:
                out.update(future.result())
            return out

        return result

    def read_cases(
        self, reader: Callable[[Sequence[str]], list[Read]], ticket_ids: Sequence[str]
    ) -> Callable[[], list[Read]]:
        """Begin reading these tickets in a worker (with the help desk's picklable reader);
        the callable waits."""
        return self._submit(reader, list(ticket_ids)).result

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
