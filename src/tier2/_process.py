"""Whether a process of this machine is still there."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True while the process exists (not yet reaped counts), or is someone else's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
