"""Benchmark: start-up time of the command line.

    .venv/bin/python bench/startup.py [--runs 21]

Runs ``python -m drkit --version``, ``--help`` and ``lint --help`` as fresh processes
RUNS times each (interleaved, so a burst of load on the machine hits every command alike)
and prints the median wall time and the median CPU time (user + system of the child, from
``resource.getrusage``), beside the interpreter's own start-up (``python -c pass``) as the
floor. Goal: ``--version`` and ``--help`` under 0.15 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS: dict[str, list[str]] = {
    "python -c pass (floor)": ["-c", "pass"],
    "drkit --version": ["-m", "drkit", "--version"],
    "drkit --help": ["-m", "drkit", "--help"],
    "drkit lint --help": ["-m", "drkit", "lint", "--help"],
}


def run_once(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh ``python ARGS`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpus: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():  # warm the page cache and bytecode
        run_once(argv, env)
    for _ in range(args.runs):
        for name, argv in COMMANDS.items():
            wall, cpu = run_once(argv, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    print(f"{'command':<24} {'wall s':>8} {'cpu s':>8}   (median of {args.runs} runs; "
          f"load average {os.getloadavg()[0]:.2f})")
    for name in COMMANDS:
        print(f"{name:<24} {statistics.median(walls[name]):8.3f} "
              f"{statistics.median(cpus[name]):8.3f}")


if __name__ == "__main__":
    main()
