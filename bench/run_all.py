"""Every benchmark in one run, each rewriting its section of docs/benchmarks.md.

    python bench/run_all.py            # the full sizes: about 1.5 hours on 2 cores, on a quiet machine
    python bench/run_all.py --quick    # small sizes (the test suite runs each script this way)

Indexing keeps its bulk index so that the latency benchmark queries a realistic corpus.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import parser  # noqa: E402

BENCH = Path(__file__).resolve().parent


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--documents", default=None, help="Passed to indexing.py: the first N bulk documents.")
    arguments.add_argument("--sizes", default=None, help="Passed to scale.py: passage counts, e.g. 100000,1000000.")
    args = arguments.parse_args()
    common = ["--out", str(args.out), *(["--quick"] if args.quick else [])]
    with tempfile.TemporaryDirectory(prefix="bench-") as workspace:
        index = Path(workspace) / "bulk-index"
        for script, extra in (
            ("indexing.py", ["--keep", str(index), *(["--documents", args.documents] if args.documents else [])]),
            ("latency.py", ["--index", str(index)]),
            ("cold.py", ["--index", str(index)]),
            ("scale.py", ["--sizes", args.sizes] if args.sizes else []),
            ("stores.py", ["--sizes", args.sizes] if args.sizes else []),
            ("peer.py", []),
            ("watches.py", ["--index", str(index)]),
        ):
            started = time.perf_counter()
            print(f"== {script}", flush=True)
            subprocess.run([sys.executable, str(BENCH / script), *common, *extra], check=True)
            print(f"== {script} took {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
