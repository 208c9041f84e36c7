"""Named crash points, so a test can kill tier2 exactly where it means to, and count it.

A process started with `TIER2_CRASH_AT=<point>` kills itself with SIGKILL the `n`th time
(`TIER2_CRASH_AFTER`, default 1) it reaches that point, as a kill from outside would: no
`finally`, no handler, no flush. With `TIER2_CRASH_LOG=<file>` it first appends the point's
name to that file, so the test knows the point was reached. Without the variable a point
costs one comparison.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "after_claim",  # tickets claimed (committed), not yet read
    "after_intake",  # cases opened and tickets taken (committed), not yet decided
    "after_decision",  # decisions and their effects' intents committed, nothing carried out
    "after_effect_sent",  # the help desk has an effect that the store has not recorded
    "between_effects",  # one effect of a batch carried out, the next not yet
    "after_document",  # notes written and the ticket moved (committed), the case not final
    "worker_mid_batch",  # a deciding worker, half-way through its share of a batch
)

_ARMED = os.environ.get("TIER2_CRASH_AT") or None
_AFTER = int(os.environ.get("TIER2_CRASH_AFTER") or 1)
_LOG = os.environ.get("TIER2_CRASH_LOG") or None
_hits = 0

if _ARMED is not None and _ARMED not in POINTS:
    raise SystemExit(f"TIER2_CRASH_AT: no crash point {_ARMED!r}; the points: {', '.join(POINTS)}")


def crash_point(name: str) -> None:
    """Die here (SIGKILL) when this point is the one armed and its turn has come."""
    global _hits  # noqa: PLW0603 (one count per process)
    if name != _ARMED:
        return
    _hits += 1
    if _hits < _AFTER:
        return
    if _LOG is not None:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{name} {os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)
