"""Run every drkit benchmark in turn (``make bench``) and print their figures.

Each benchmark is its own script with its own options (``--help``); this runs them with
their defaults (the crash campaign with 10 kills: ``bench/crash.py --kills 50`` is the full
one, about 40 minutes here). Speed is measured here, never in the test suite.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [["startup.py"], ["lint.py"], ["lint_hostile.py"], ["lint_duties.py"],
           ["verify.py"], ["snapshot.py"], ["dbdump.py"], ["pitr.py"],
           ["journal_growth.py"], ["crash.py", "--kills", "10"]]


def main() -> int:
    failed = []
    for name, *args in BENCHES:
        print(f"\n===== bench/{name} {' '.join(args)} =====", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / name), *args])
        print(f"----- bench/{name}: exit {code} in {time.monotonic() - started:.0f} s",
              flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
