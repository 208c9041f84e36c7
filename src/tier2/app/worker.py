"""The worker beside `tier2 serve`: a pass of `tier2 run` at once when a webhook delivery is
queued, and every `poll_seconds` otherwise.

Deliveries are rows in `webhook_inbox`, committed before the webhook's 202; a pass takes
every delivery queued before it began, so a crash loses none (the next pass takes them) and
a pass repeated changes nothing (every step of a case is keyed).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import orjson

from tier2.app.runner import Runner, RunStats
from tier2.app.sla_monitor import SlaMonitor


class Worker:
    def __init__(
        self,
        runner: Runner,
        poll_seconds: float,
        monitor: SlaMonitor | None = None,
        log: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self.runner, self.monitor, self.poll = runner, monitor, poll_seconds
        self._log = log or _stderr
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tier2-worker", daemon=True)
        self.passes = 0

    def wake(self) -> None:
        """A delivery was queued: run a pass now."""
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand, let go of the rest, leave."""
        self._stop.set()
        self.runner.stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self.runner.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                stats = self.runner.run_once()
                self._report(stats)
                if self.monitor is not None:
                    scan = self.monitor.scan()
                    self._log({"event": "sla_scan", "escalated": sum(scan.escalated.values())})
            except Exception as exc:  # a help desk down: say so and try again next time
                self._log({"event": "pass_failed", "error": f"{type(exc).__name__}: {exc}"})
            self.passes += 1

    def _report(self, stats: RunStats) -> None:
        self._log(
            {
                "event": "pass",
                "received": stats.received,
                "reopened": stats.reopened,
                "finished": stats.finished,
                "outcomes": dict(stats.outcomes),
                "failed": [f"{c}: {p}" for c, p in stats.failed],
                "deliveries": stats.deliveries,
            }
        )


def _stderr(line: dict[str, object]) -> None:
    sys.stderr.write(orjson.dumps(line).decode() + "\n")
