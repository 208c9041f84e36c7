"""tier2's marks on a ticket, the same on every help desk: each message tier2 writes ends with
a `tier2-key:` line, so a message repeated after a crash is recognised and not written twice.

A mark counts only on a message tier2 itself wrote (each help desk tells those apart by their
author: tier2's own user or agent); anyone can type a key line into a message of their own."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

KEY_LINE = "tier2-key: "
_KEY = re.compile(r"^tier2-key: (\S+)\s*$", re.MULTILINE)


def keys_in(attachments: Sequence[Mapping[str, Any]]) -> set[str]:
    """The tier2 keys in these messages (each as `{"Content": text}`): give it only tier2's
    own messages."""
    return {k for a in attachments for k in _KEY.findall(str(a.get("Content") or ""))}


def marked(text: str) -> bool:
    """Whether a message carries a tier2 key line (tier2's message if tier2 wrote it)."""
    return _KEY.search(text) is not None
