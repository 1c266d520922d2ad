"""``gradcheck grade SUBMISSIONS``: the command line of :mod:`gradcheck.grade`.

Declares the sub-command's options, validates them (a usage error is exit status 2),
shows progress (students done / total and an estimate of the time left on a terminal;
one line per student elsewhere), prints a summary and writes the CSV, HTML and JSON
files. Exit status 0 whenever the grading ran, whatever the students' verdicts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from typing import Any, TextIO

from gradcheck.grade import VERDICTS, GradeSettings, Row, Student, grade, students
from gradcheck.grade_report import common_causes, write_csv, write_html, write_json
from gradcheck.options import CheckOptions

__all__ = ["add_parser", "run"]

DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 2048
_MIN_MEMORY_MB = 256  # below this, importing numpy alone fails


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def add_parser(sub: Any) -> None:
    """Add ``grade`` to the sub-commands of the ``gradcheck`` parser."""
    grade_parser = sub.add_parser(
        "grade", help="check a whole class: one student per entry of SUBMISSIONS",
        description="Check every student's layers, classifiers and models: each entry of "
        "SUBMISSIONS (a folder or a .py file) is one student. Exit status 0 when the grading "
        "ran, whatever the verdicts; 2 for usage errors.")
    grade_parser.add_argument("submissions", metavar="SUBMISSIONS",
                              help="a folder with one entry (sub-folder or .py file) per student")
    grade_parser.add_argument("--jobs", type=int, default=_cores(), metavar="N",
                              help=f"workers in parallel (default: the cores, {_cores()})")
    grade_parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                              help=f"time limit per layer and per import (default {DEFAULT_TIMEOUT:g})")
    grade_parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB, metavar="MB",
                              help="address-space limit of each worker process in MiB "
                              f"(default {DEFAULT_MEMORY_MB})")
    grade_parser.add_argument("--examples", type=int, default=10, metavar="N",
                              help="generated cases per layer (default 10)")
    grade_parser.add_argument("--seed", type=int, default=0, metavar="S",
                              help="seed of the generated cases (default 0)")
    grade_parser.add_argument("--csv", metavar="FILE", help="one row per student and layer: "
                              "student, file, layer, verdict, gradients, diagnosis, case, seconds")
    grade_parser.add_argument("--html", metavar="FILE",
                              help="a student x layer matrix with every report and the common causes")
    grade_parser.add_argument("--json", metavar="FILE", help="every row with its whole result")


def _usage_error(message: str) -> int:
    sys.stderr.write(f"gradcheck grade: error: {message}\n")
    return 2


def _problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, naming the option, or ``None``."""
    for name, value, low in (("--jobs", args.jobs, 1), ("--timeout", args.timeout, 1),
                             ("--memory", args.memory, _MIN_MEMORY_MB), ("--examples", args.examples, 1),
                             ("--seed", args.seed, 0)):
        if value < low:
            return f"{name}={value:g} must be at least {low}"
    if not os.path.isdir(args.submissions):
        return (f"SUBMISSIONS must be a folder with one entry per student; "
                f"{args.submissions} {'is a file' if os.path.exists(args.submissions) else 'does not exist'}")
    for option in ("csv", "html", "json"):
        target = getattr(args, option)
        if target and not os.path.isdir(os.path.dirname(os.path.abspath(target))):
            return f"--{option} {target}: its folder does not exist"
    return None


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Grade the class ``args.submissions``; returns the exit status."""
    problem = _problem(args)
    if problem is not None:
        return _usage_error(problem)
    roster = students(args.submissions)
    if not roster:
        return _usage_error(f"{args.submissions} is empty: it needs one entry per student")
    options = CheckOptions.within(args.timeout, examples=args.examples, seed=args.seed, mode="directional")
    settings = GradeSettings(options=options, timeout=args.timeout, jobs=args.jobs, memory_mb=args.memory)
    out.write(f"gradcheck grade: {len(roster)} students in {args.submissions} ({args.jobs} jobs, timeout "
              f"{args.timeout:g} s per layer, memory {args.memory} MB per worker, seed {args.seed})\n")
    out.flush()
    progress = GradeProgress(len(roster))
    started = time.perf_counter()
    rows = grade(args.submissions, settings, progress.student_done)
    progress.clear()
    seconds = time.perf_counter() - started
    _summary(rows, len(roster), seconds, out)
    header = {"submissions": os.path.abspath(args.submissions), "students": len(roster),
              "seed": args.seed, "timeout": args.timeout, "memory_mb": args.memory,
              "jobs": args.jobs, "seconds": round(seconds, 1)}
    for option, write in (("csv", lambda p: write_csv(rows, p)),
                          ("html", lambda p: write_html(rows, p, f"gradcheck grade {args.submissions}")),
                          ("json", lambda p: write_json(rows, p, header))):
        target = getattr(args, option)
        if target:
            write(target)
            out.write(f"wrote {target}\n")
    return 0


def _summary(rows: list[Row], n_students: int, seconds: float, out: TextIO) -> None:
    counts = Counter(row.verdict for row in rows)
    verdicts = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    rate = n_students / seconds * 60 if seconds > 0 else 0.0
    out.write(f"\n{n_students} students, {len(rows)} rows: {verdicts} in {seconds:.1f} s "
              f"({rate:.1f} students per minute)\n")
    causes = common_causes(rows)
    if causes:
        out.write("\nMost common causes, per layer:\n")
    for layer, found in causes.items():
        text = "; ".join(f"{n} of {total} {c}" for c, n, total in found[:3])
        out.write(f"  {layer}: {text}\n")


class GradeProgress:
    """Students done / total with the time left on a terminal; one line per student
    elsewhere (a log is no silence while a class is graded)."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = total
        self.students = 0
        self.started = time.perf_counter()

    def student_done(self, student: Student, rows: list[Row], tasks_done: int, tasks_total: int) -> None:
        self.students += 1
        elapsed = time.perf_counter() - self.started
        counts = Counter(row.verdict for row in rows)
        verdicts = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
        if self.terminal:
            left = elapsed * (tasks_total - tasks_done) / tasks_done if tasks_done else 0.0
            self.stream.write(f"\r\033[Kgraded {self.students}/{self.total} students, "
                              f"about {_duration(left)} left")
        else:
            self.stream.write(f"gradcheck grade: {student.name}: {verdicts or 'nothing found'} "
                              f"({self.students}/{self.total} students, {elapsed:.0f} s)\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.terminal:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
