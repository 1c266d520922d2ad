"""What ``gradcheck check`` prints: the table of layers x gradients, a section per failing
(or warned) layer with the student's own printed output, and progress on stderr.

Printed output is shown as pytest shows captured output: for failing and erroring layers,
its last lines (``--show-output`` shows all of it, for every layer).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from gradcheck.outcome import Outcome
from gradcheck.report import text_table

__all__ = ["Progress", "output_lines", "print_results", "table"]

OUTPUT_LINES = 20  # lines of a failing layer's printed output shown without --show-output
_LINE_WIDTH = 300
_RULE = "=" * 78


def print_results(results: list[Outcome], unmatched: list[str], out: TextIO, *, quiet: bool = False,
                  strict: bool = False, show_output: bool = False) -> None:
    """The table, then a section per failing layer, per warned layer, notes, unmatched names."""
    if not quiet:
        out.write(table(results, strict) + "\n")
    for r in results:
        if not r.passed:
            out.writelines(line + "\n" for line in _failure_lines(r))
            out.writelines(line + "\n" for line in output_lines(r, full=show_output))
    for r in results:
        if r.passed and (r.warnings or (show_output and r.output.strip())):
            verdict = "passed with warnings" if r.warnings else "passed"
            failing = " (fails under --strict)" if strict and r.warnings else ""
            out.write(f"\n{_RULE}\n{r.spec} ({functions(r)}): {verdict}{failing}\n")
            out.writelines(line + "\n" for line in r.warning_lines())
            if show_output:
                out.writelines(line + "\n" for line in output_lines(r, full=True))
    if not quiet:
        notes = [(r, n) for r in results if r.passed for n in r.notes]
        for r, note in notes:
            out.write(f"\nnote on {r.spec}: {note}\n")
    if unmatched:
        out.write("\nNot checked (no matching layer):\n")
        out.writelines(f"  - {line}\n" for line in unmatched)


def _failure_lines(r: Outcome) -> list[str]:
    lines = ["", _RULE, f"{r.spec} ({functions(r)}): {r.verdict}", *r.finding_lines()]
    return lines + ([f"  note: {note}" for note in r.notes] if not r.error else [])


def output_lines(r: Outcome, *, full: bool = False) -> list[str]:
    """What the layer's code printed while it was checked, under a rule (pytest's "Captured
    stdout"): its last :data:`OUTPUT_LINES` lines unless ``full``; nothing if it printed nothing."""
    printed = r.output.rstrip().splitlines()
    if not r.output.strip():
        return []
    title = f"output printed by {functions(r)} over all its cases"
    if not full and len(printed) > OUTPUT_LINES:
        title += f" (last {OUTPUT_LINES} of {len(printed)} lines; -s shows all)"
        printed = printed[-OUTPUT_LINES:]
    if not full:
        printed = [line if len(line) <= _LINE_WIDTH else
                   f"{line[:_LINE_WIDTH]} [... {len(line) - _LINE_WIDTH} more characters]"
                   for line in printed]
    return ["", f"{'-' * 3} {title} {'-' * max(3, 74 - len(title))}", *printed]


def functions(r: Outcome) -> str:
    """``forward/backward``, or the loss function's name."""
    forward, backward = r.functions
    return forward if backward is None else f"{forward}/{backward}"


def table(results: list[Outcome], strict: bool = False) -> str:
    """One row per layer: cases, forward verdict, each gradient's verdict, time, verdict;
    with a file column when the results come from several files."""
    files = _file_labels(results)
    rows = [(["file"] if files else []) + ["layer", "functions", "cases", "forward", "gradients",
                                           "time", "verdict"]]
    for r in results:
        grads = "  ".join(f"d{k}:{v}" for k, v in r.gradients.items())
        if r.contract:
            grads += "  contract:" + ",".join(r.contract)
        if r.warnings:
            grads += "  warning:" + ",".join(w["kind"] for w in r.warnings)
        cases = str(r.n_cases) + (f"+{r.n_skipped} skipped" if r.n_skipped else "")
        verdict: str = str(r.verdict)
        if verdict == "warning" and strict:
            verdict = "FAILED (strict)"
        elif verdict == "warning":
            verdict = "passed*"
        rows.append(([files[r.file]] if files else [])
                    + [r.spec, functions(r), cases, r.forward, grads, f"{r.seconds:.1f}s", verdict])
    return "\n".join(text_table(rows))


def _file_labels(results: list[Outcome]) -> dict[str, str]:
    """Each result's file, shortened to what tells them apart; empty for a single file."""
    paths = sorted({r.file for r in results})
    if len(paths) < 2:
        return {}
    common = os.path.commonpath([os.path.abspath(p) for p in paths])
    return {p: os.path.relpath(os.path.abspath(p), common) for p in paths}


class Progress:
    """Progress on stderr: ``checking conv (3/12 done)`` on a terminal; elsewhere (a log, a
    CI job) one line per finished layer, so that a slow layer is no silence."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = total
        self.finished = 0
        self.running: list[str] = []
        self._write: Callable[[str], Any] = self.stream.write

    def start(self, name: str) -> None:
        self.running.append(name)
        self._show()

    def done(self, name: str, outcome: Outcome | None = None) -> None:
        self.finished += 1
        if name in self.running:
            self.running.remove(name)
        if not self.enabled and outcome is not None:
            self._write(f"gradcheck: {name}: {outcome.verdict} ({self.finished}/{self.total} done, "
                        f"{outcome.seconds:.1f} s)\n")
            self.stream.flush()
        self._show()

    def _show(self) -> None:
        if self.enabled:
            running = f"checking {', '.join(self.running)} " if self.running else ""
            self._write(f"\r\033[K{running}({self.finished}/{self.total} done)")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self._write("\r\033[K")
            self.stream.flush()
