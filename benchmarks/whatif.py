"""`tier2 whatif` over a store of a million decided cases: time and peak memory.

    .venv/bin/python benchmarks/console.py --build-only --no-postgres   # the store, once
    .venv/bin/python benchmarks/whatif.py

The store is the one `benchmarks/console.py` builds and keeps (1,000,000 cases of both
reference companies, each decided by tier2's pipeline, with reviews). The draft is the
ecommerce library with tier-2's cap raised from 500 to 1,000. The replay runs as a user runs
it, `tier2 whatif DRAFT --db URL --format json --no-lint`, in a subprocess with a time limit;
the script prints its wall time, the cases per second, the peak memory of the command's own
process and of its largest replaying process, and the counts it reported.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
BUILTIN = HERE.parent / "src" / "tier2" / "library" / "builtin" / "ecommerce"
TARGET_SECONDS = 300.0


def draft(folder: Path) -> Path:
    """The ecommerce library with tier-2's cap raised from 500 to 1,000."""
    out = folder / "ecommerce-cap-1000"
    shutil.copytree(BUILTIN, out)
    text = (out / "library.yaml").read_text()
    (out / "library.yaml").write_text(
        text.replace("{role: tier2, limit: 500,", "{role: tier2, limit: 1000,")
    )
    return out


def main() -> None:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tier2-bench"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=f"sqlite:///{cache / 'console-v1-1000000-100000.db'}")
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    path = args.db.removeprefix("sqlite:///")
    if args.db.startswith("sqlite:///") and not Path(path).exists():
        sys.exit(f"no store at {path}: build it with benchmarks/console.py --build-only")
    tier2 = str(Path(sys.executable).parent / "tier2")
    with tempfile.TemporaryDirectory() as tmp:
        library = draft(Path(tmp))
        command = [tier2, "whatif", str(library), "--db", args.db, "--format", "json",
                   "--no-lint", "--workers", str(args.workers)]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, timeout=args.timeout, check=False)
        took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"tier2 whatif failed:\n{done.stderr.decode()[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB (Linux: KiB)
    found = orjson.loads(done.stdout)
    n = found["cases"]
    print(f"tier2 whatif {library.name} over {n:,} stored cases ({args.db})")
    print(f"  wall {took:.1f} s ({n / took:,.0f} cases/s); target <= {TARGET_SECONDS:.0f} s: "
          f"{'met' if took <= TARGET_SECONDS else 'NOT met'}")  # fmt: skip
    print(f"  peak memory of the largest process: {peak:,.0f} MiB")
    print(f"  unchanged {found['unchanged']:,}, changed {found['changed']:,}, reasons only "
          f"{found['reasons_only']:,}, errored {found['errored']:,}")  # fmt: skip


if __name__ == "__main__":
    main()
