"""Run every benchmark in turn, each in its own process, printing their tables.

    python benchmarks/run_all.py [--quick] [--only verify,queries,...]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres) for signin (--db both),
queries (--db both) and scale; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = ["verify", "queries", "signin", "scale", "memory"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke runs")
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(SCRIPTS))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else SCRIPTS
    unknown = set(names) - set(SCRIPTS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    failed = []
    for name in names:
        command = [sys.executable, str(Path(__file__).with_name(f"{name}.py"))]
        if args.quick:
            command.append("--quick")
        print(f"\n===== {name} =====", flush=True)
        started = time.monotonic()
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
        print(f"===== {name}: {time.monotonic() - started:.0f}s =====", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
