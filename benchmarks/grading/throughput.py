"""Grading throughput: submissions per minute for a class, and how it scales with --jobs.

``python -m benchmarks.grading.throughput [--students 30] [--jobs 1 2 4] [--repeats 1]
[--pytest] [--tx] [--no-grade]``

Builds a class of whole ``layers.py`` files (15 layers each; correct, or with one bug or
hazard; :func:`benchmarks.grading.classroom.whole_file_class`) in a temporary folder and
grades it with ``gradcheck grade --jobs N`` for each N, and with ``--pytest`` also as
pytest items (``pytest --gradcheck-target CLASS -n N``), and with ``--tx`` over N popen
executors of pytest-xdist (``--tx N*popen//python=...``, the recipe for several hosts
run on this one). The configurations run in turn
within each repeat, so that their ratios are measured side by side on a shared machine;
times are medians over the repeats. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.grading.classroom import whole_file_class

ROOT = Path(__file__).resolve().parents[2]


def _grade(folder: Path, jobs: int) -> list[str]:
    return [sys.executable, "-m", "gradcheck", "grade", str(folder), "--jobs", str(jobs)]


def _pytest(folder: Path, jobs: int) -> list[str]:
    workers = ["-p", "no:xdist"] if jobs == 1 else ["-n", str(jobs)]
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--gradcheck-target", str(folder),
            "--rootdir", str(folder), "-c", os.devnull, *workers]


def _tx(folder: Path, jobs: int) -> list[str]:
    """The recipe for hosts, on this one: ``jobs`` popen executors (what ssh executors run,
    started locally) reading the class where it is (``--gradcheck-target=`` in one word:
    xdist would take a separate existing path for one to copy to the hosts)."""
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--gradcheck-target={folder}",
            "--dist", "load", "--tx", f"{jobs}*popen//python={sys.executable}", "--rootdir", str(folder),
            "-c", os.devnull]


def _timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # pytest exits 1 when a student's layer fails
        raise SystemExit(f"{' '.join(command)} failed with status {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grading.throughput", description=__doc__)
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--pytest", action="store_true", help="also time the class as pytest items")
    parser.add_argument("--tx", action="store_true",
                        help="also time pytest items over --tx N*popen executors (the recipe for hosts)")
    parser.add_argument("--no-grade", action="store_true", help="leave out gradcheck grade")
    args = parser.parse_args(argv)
    faces = ([] if args.no_grade else [("gradcheck grade", _grade)]) + (
        [("pytest -n", _pytest)] if args.pytest else []) + ([("pytest --tx popen", _tx)] if args.tx else [])
    times: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        folder = Path(tmp) / "class"
        whole_file_class(folder, args.students)
        for _ in range(args.repeats):
            for name, command in faces:
                for jobs in args.jobs:
                    seconds = _timed(command(folder, jobs), Path(tmp))
                    times.setdefault((name, jobs), []).append(seconds)
                    print(f"{name} jobs={jobs}: {seconds:.1f} s", file=sys.stderr, flush=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.students} students x 15 layers, {cores} cores, Python {platform.python_version()}, "
          f"median of {args.repeats}\n")
    print(f"| run | jobs | seconds | students per minute | speed-up over {args.jobs[0]} jobs |")
    print("|---|---|---|---|---|")
    for name, _ in faces:
        base = statistics.median(times[(name, args.jobs[0])])
        for jobs in args.jobs:
            seconds = statistics.median(times[(name, jobs)])
            print(f"| {name} | {jobs} | {seconds:.0f} | {args.students / seconds * 60:.1f} | "
                  f"{base / seconds:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
