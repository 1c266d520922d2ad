"""Grading a whole class: one student per entry of a submissions folder.

Each entry of the folder is one student: a sub-folder (an assignment folder, a ``cs231n/``
package, or several assignments: every file :func:`gradcheck.packages.find_files` knows
in it is checked) or a single ``.py`` file. Every file is imported, and every layer,
classifier and model found in it checked, in a worker process of its own
(:mod:`gradcheck.isolation`) with a fresh temporary working directory, closed standard
input, a time limit and a memory limit; ``jobs`` of them run at once. The result is one
:class:`Row` per student and layer found, in the student's order and then the file's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, cast

from gradcheck.candidate import Outcome
from gradcheck.discover import Discovery, Match
from gradcheck.isolation import Sandbox, check_isolated, discover_isolated
from gradcheck.kinds import Verdict, ViolationKind
from gradcheck.options import CheckOptions
from gradcheck.packages import KNOWN_FILES, find_files

__all__ = ["SEPARATOR", "VERDICTS", "GradeSettings", "Row", "Student", "grade", "is_assignment", "students",
           "target_files"]

SEPARATOR = " | "  # between the causes of one row's diagnosis
VERDICTS = ("passed", "warning", "failed", "error")
_VERDICT = {Verdict.PASSED: "passed", Verdict.WARNING: "warning", Verdict.FAILED: "failed",
            Verdict.ERROR: "error"}


@dataclass(frozen=True)
class GradeSettings:
    """How a class is graded: the checks' options, and each worker's limits."""

    options: CheckOptions = field(default_factory=lambda: CheckOptions.within(120.0, mode="directional"))
    timeout: float = 120.0  # seconds per layer (and per import)
    jobs: int = 1
    memory_mb: int = 2048

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout={self.timeout!r} must be a positive number of seconds")
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"jobs={self.jobs!r} must be a positive integer")

    @property
    def sandbox(self) -> Sandbox:
        return Sandbox(memory_mb=self.memory_mb, fresh_cwd=True)


@dataclass(frozen=True)
class Student:
    """One entry of the submissions folder and the files gradcheck knows in it."""

    name: str
    path: str
    files: tuple[str, ...]
    problem: str = ""  # why nothing in this entry can be checked


@dataclass
class Row:
    """One student's verdict on one layer (or one file that could not be imported)."""

    student: str
    file: str
    layer: str
    verdict: str  # one of VERDICTS
    gradients: str = ""
    diagnosis: str = ""
    case: str = ""
    seconds: float = 0.0
    report: str = ""  # the whole report, as the command line prints it
    outcome: dict[str, Any] | None = None
    flag: str = ""  # "reference_imported": hands in the checker's own reference


    def to_dict(self) -> dict[str, Any]:
        return {"student": self.student, "file": self.file, "layer": self.layer,
                "verdict": self.verdict, "gradients": self.gradients, "diagnosis": self.diagnosis,
                "case": self.case, "seconds": round(self.seconds, 2), "flag": self.flag,
                "report": self.report, "result": self.outcome}


def students(folder: str) -> list[Student]:
    """Every entry of ``folder`` as a student, sorted by name (hidden entries skipped)."""
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.abspath(os.path.join(folder, name))
        if name.startswith(".") or name == "__pycache__":
            continue
        if os.path.isdir(path):
            files = tuple(find_files(path))
            problem = "" if files else (f"no file gradcheck knows in this folder (it looks for "
                                        f"{', '.join(KNOWN_FILES)} and classifiers/*.py)")
            found.append(Student(name, path, files, problem))
        elif name.endswith(".py"):
            found.append(Student(os.path.splitext(name)[0], path, (path,)))
        else:
            found.append(Student(name, path, (), "not a .py file or a folder: unpack archives and "
                                 "export notebooks to .py before grading"))
    return found


def is_assignment(folder: str) -> bool:
    """Whether ``folder`` is one student's assignment folder or ``cs231n/`` package rather
    than a folder of submissions: it holds a known file, a ``classifiers/`` or a
    ``cs231n/`` folder itself."""
    names = set(os.listdir(folder))
    return (os.path.basename(os.path.abspath(folder)) == "cs231n" or bool(names & set(KNOWN_FILES))
            or "classifiers" in names or "cs231n" in names)


def target_files(path: str) -> list[str]:
    """The files to check for ``path``: a file itself, the known files of an assignment
    folder, or those of every student of a submissions folder (absolute paths)."""
    if not os.path.isdir(path):
        return [os.path.abspath(path)]
    if is_assignment(path):
        return [os.path.abspath(f) for f in find_files(path)]
    return [f for student in students(path) for f in student.files]


def _file_label(student: Student, path: str) -> str:
    if path == student.path:
        return os.path.basename(path)
    return os.path.relpath(path, student.path)


def _error_row(student: Student, file: str, layer: str, reason: str) -> Row:
    return Row(student.name, file, layer, "error", diagnosis=_first_line(reason), report=reason)


def _import_diagnosis(reason: str) -> str:
    """An import failure in a line: the exception, and where in the student's file."""
    lines = [line.strip() for line in reason.strip().splitlines() if line.strip()]
    if not lines or "not installed" in lines[0] or len(lines) == 1:
        return _first_line(reason)
    errors = [line for line in lines if re.match(r"[\w.]+(Error|Exception|Exit|Interrupt)\b", line)]
    places = re.findall(r'File "([^"]+)", line (\d+)', reason)
    where = f" ({os.path.basename(places[-1][0])}, line {places[-1][1]})" if places else ""
    return "cannot be imported: " + (errors[-1] if errors else lines[-1]) + where


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split("; last output:")[0]


def _diagnosis(outcome: Outcome) -> str:
    """What went wrong, in a line: the error, the causes named per gradient, a wrong
    forward, a broken contract or the warnings."""
    if outcome.error:
        return _first_line(outcome.error)
    found: list[str] = []
    if outcome.forward == "FAILED":
        found.append("forward: " + _first_line(outcome.forward_message))
    report = outcome.report_dict or {}
    for g in (report.get("gradients") or {}).values():
        if g.get("status") in ("passed", "kink"):
            continue
        cause = g.get("diagnosis") or g.get("reason")
        found.append(_first_line(cause) if cause else f"d{g['name']} wrong (no single cause fits)")
    gradient_reasons = (ViolationKind.GRADIENT_SHAPE, ViolationKind.GRADIENT_TYPE)  # given per gradient
    found += [_first_line(str(v.get("message", v.get("kind", "")))) for v in report.get("violations") or []
              if v.get("kind") not in gradient_reasons]
    if not found and not outcome.passed:
        found = [f"{name}: {verdict}" for name, verdict in outcome.gradients.items() if verdict != "ok"]
        found += outcome.contract
    if outcome.passed:
        found = [f"warning [{w['kind']}]: {_first_line(w['message'])}" for w in outcome.warnings]
    return SEPARATOR.join(dict.fromkeys(found))


def _report(outcome: Outcome) -> str:
    """The report of one layer, as text: error, smallest failing case, forward, gradients,
    notes and warnings."""
    parts = [f"{outcome.spec}: {outcome.verdict}"]
    if outcome.error:
        parts.append(outcome.error)
    if outcome.failing_case:
        parts.append(f"smallest failing case: {outcome.failing_case}")
    if outcome.forward == "FAILED":
        parts.append(f"forward: {outcome.forward_message}")
    if outcome.report_text and not outcome.passed:
        parts.append(outcome.report_text)
    parts += [f"note: {note}" for note in outcome.notes]
    parts += outcome.warning_lines()
    return "\n".join(parts)


def _row(student: Student, path: str, outcome: Outcome) -> Row:
    return Row(student.name, _file_label(student, path), outcome.spec, _VERDICT[outcome.verdict],
               gradients=" ".join(f"d{k}:{v}" for k, v in outcome.gradients.items()),
               diagnosis=_diagnosis(outcome), case=outcome.failing_case or "",
               seconds=outcome.seconds, report=_report(outcome), outcome=outcome.to_dict(),
               flag=_flag(outcome))


def _flag(outcome: Outcome) -> str:
    """``reference_imported`` for a layer that hands in the checker's own reference."""
    kind = ViolationKind.REFERENCE_IMPORTED
    return kind.value if kind in outcome.contract else ""


Progress = Callable[[Student, list[Row], int, int], None]  # student, rows, tasks done, tasks


class _Ledger:
    """Rows per student and the tasks still running for them; tells ``progress`` of each
    student done."""

    def __init__(self, roster: list[Student], progress: Progress | None) -> None:
        self.rows: dict[str, list[tuple[int, Row]]] = {s.name: [] for s in roster}
        self.pending = {s.name: len(s.files) for s in roster}
        self.done, self.total = 0, sum(len(s.files) for s in roster)
        self.progress = progress

    def student(self, student: Student) -> list[Row]:
        return [row for _, row in sorted(self.rows[student.name], key=lambda item: item[0])]

    def finish(self, student: Student, order: int, rows: list[Row], tasks: int = 0) -> None:
        """A task of ``student`` ended with ``rows`` (at ``order``), adding ``tasks`` more."""
        self.rows[student.name] += [(order, row) for row in rows]
        self.pending[student.name] += tasks - 1
        self.done, self.total = self.done + 1, self.total + tasks
        if self.pending[student.name] == 0:
            self.close(student)

    def close(self, student: Student) -> None:
        """``student`` is done: a row for one with nothing found, and the progress."""
        if not self.rows[student.name]:
            files = ", ".join(_file_label(student, f) for f in student.files)
            what = student.problem or f"no layer, classifier or model found in {files}"
            self.rows[student.name].append((0, _error_row(student, "-", "-", what)))
        if self.progress is not None:
            self.progress(student, self.student(student), self.done, self.total)


def grade(folder: str, settings: GradeSettings, progress: Progress | None = None) -> list[Row]:
    """Grade every student in ``folder``; ``progress`` hears of each student when done."""
    roster = students(folder)
    ledger = _Ledger(roster, progress)
    for student in roster:
        if not student.files:
            ledger.close(student)  # nothing to run: an error row with its problem
    _run(roster, settings, ledger.finish)
    return [row for student in roster for row in ledger.student(student)]


def _run(roster: list[Student], settings: GradeSettings,
         finish: Callable[[Student, int, list[Row], int], None]) -> None:
    """Discover every file, then check every layer found, ``settings.jobs`` at a time."""
    sandbox = settings.sandbox
    with ThreadPoolExecutor(max_workers=settings.jobs) as pool:
        pending: dict[Future[Any], tuple[Student, str, int, Match | None]] = {}
        for student in roster:
            for index, path in enumerate(student.files):
                future = pool.submit(discover_isolated, path, settings.timeout, sandbox)
                pending[future] = (student, path, index * 1000, None)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                student, path, order, match = pending.pop(future)
                if match is not None:
                    finish(student, order, [_row(student, path, cast(Outcome, future.result()))], 0)
                    continue
                discovery = cast("Discovery | str", future.result())
                matches = _matches(discovery)
                for k, found in enumerate(matches):
                    task = pool.submit(check_isolated, path, found, settings.options, settings.timeout,
                                       "--timeout", sandbox)
                    pending[task] = (student, path, order + k + 1, found)
                finish(student, order, _discovery_rows(student, path, discovery), len(matches))


def _matches(discovery: Discovery | str) -> list[Match]:
    return [] if isinstance(discovery, str) else list(discovery.matches)


def _discovery_rows(student: Student, path: str, discovery: Discovery | str) -> list[Row]:
    """A file that could not be imported is an error row; one with nothing known in it has
    no row (a student with nothing at all gets one)."""
    if isinstance(discovery, str):
        row = _error_row(student, _file_label(student, path), "import", discovery)
        row.diagnosis = _import_diagnosis(discovery)
        return [row]
    return []
