"""tier2's marks on a ticket, the same on every help desk: each message tier2 writes ends with
a `tier2-key:` line, so a message repeated after a crash is recognised and not written twice."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

KEY_LINE = "tier2-key: "
_KEY = re.compile(r"^tier2-key: (\S+)\s*$", re.MULTILINE)


def keys_in(attachments: Sequence[Mapping[str, Any]]) -> set[str]:
    """The tier2 keys already written on a ticket (each message as `{"Content": text}`)."""
    return {k for a in attachments for k in _KEY.findall(str(a.get("Content") or ""))}


def marked(text: str) -> bool:
    """Whether a message carries a tier2 key line."""
    return _KEY.search(text) is not None
