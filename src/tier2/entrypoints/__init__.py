"""Entry points: the composition root, the command line, the HTTP service."""

import sys
from types import ModuleType

# The `cel` package (the policies' expressions) imports its own command line with itself, an
# interactive shell on prompt_toolkit, rich and pygments: a tenth of a second of every start,
# for nothing tier2 uses. An empty module stands in for it.
sys.modules.setdefault("cel.cli", ModuleType("cel.cli"))
