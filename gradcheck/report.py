"""Results of a check: per-gradient verdicts and a report that explains itself.

``str(report)`` is the product: a header with the method and cost, a table of gradients,
then for each failure the tolerances used, the mismatch count, the worst entries with
analytic, numeric and difference, and the most likely cause. In a notebook the same, as
HTML (:mod:`gradcheck.report_html`); each gradient's results and their wording live in
:mod:`gradcheck.results`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from gradcheck.contract import Violation
from gradcheck.kinds import Verdict
from gradcheck.report_html import render_html
from gradcheck.results import (
    MISMATCH_HEADER,
    TABLE_HEADER,
    DirectionalCheck,
    GradientResult,
    Mismatch,
)

__all__ = [
    "DirectionalCheck",
    "GradcheckWarning",
    "GradientMismatch",
    "GradientResult",
    "Mismatch",
    "Report",
    "raise_or_warn",
    "warning_dict",
    "warning_lines",
]

METHOD_NAMES = {
    "complex": "complex step",
    "central": "central differences",
    "richardson": "Richardson extrapolation",
    "forward": "forward differences",
    "none": "none",
}


@dataclass
class Report:
    """Everything one check found. ``passed`` is the verdict; ``str()`` explains it."""

    label: str
    kind: str
    gradients: dict[str, GradientResult]
    method: str
    mode: str
    seed: int
    n_evaluations: int
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    method_note: str = ""
    error_detail: str = ""

    @property
    def passed(self) -> bool:
        """Every gradient right and no breach of the contract (warnings allowed)."""
        return not self.failures and all(g.passed for g in self.gradients.values())

    @property
    def failures(self) -> list[Violation]:
        """Contract breaches that fail the check."""
        return [v for v in self.violations if not v.is_warning]

    @property
    def warnings(self) -> list[Violation]:
        """Hazards that leave every result right (a write into ``dout`` or an input)."""
        return [v for v in self.violations if v.is_warning]

    @property
    def verdict(self) -> Verdict:
        """``passed``, ``warning`` (passed, with warnings) or ``FAILED``."""
        if not self.passed:
            return Verdict.FAILED
        return Verdict.WARNING if self.warnings else Verdict.PASSED

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failed_gradients(self) -> list[str]:
        return [name for name, g in self.gradients.items() if not g.passed]

    # -- renderings ---------------------------------------------------------------------

    @property
    def method_text(self) -> str:
        """The numeric method, in words, with why it was chosen when that needs saying."""
        text = METHOD_NAMES.get(self.method, self.method)
        return f"{text} ({self.method_note})" if self.method_note else text

    def __str__(self) -> str:
        verdict = {"warning": "passed with warnings"}.get(self.verdict, self.verdict)
        lines = [
            f"gradcheck {self.label}: {verdict}",
            f"  method: {self.method_text}",
            f"  mode: {self.mode}, seed {self.seed}, {self.n_evaluations} forward evaluations",
        ]
        if self.gradients:
            lines.append("")
            lines += _table(self.gradients.values())
        if self.failures:
            lines += ["", "Contract violations:"]
            lines += [f"  - {v.message} [{v.kind}]" for v in self.failures]
        if self.warnings:
            lines += ["", "Warnings (every result is right; --strict makes these failures):"]
            lines += warning_lines(self.warnings)
        if self.error_detail:
            lines += ["", "Traceback of your code (most recent call last):"]
            lines += ["  " + line for line in self.error_detail.splitlines()]
        for g in self.gradients.values():
            if g.status == "failed":
                lines += ["", *_failure_lines(g)]
            elif g.kinks:
                lines += ["", g.kink_text()]
        if self.notes:
            lines += ["", "Notes:"] + [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return f"<Report {self.label}: {verdict}, gradients {list(self.gradients)}>"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (non-finite numbers become ``None``)."""
        return {
            "label": self.label,
            "kind": self.kind,
            "passed": self.passed,
            "method": self.method,
            "method_note": self.method_note,
            "mode": self.mode,
            "seed": self.seed,
            "n_evaluations": self.n_evaluations,
            "gradients": {f"d{name}": g.to_dict() for name, g in self.gradients.items()},
            "verdict": self.verdict,
            "violations": [
                {"kind": v.kind, "message": v.message, "argument": v.argument}
                for v in self.failures
            ],
            "warnings": [warning_dict(v) for v in self.warnings],
            "notes": list(self.notes),
            "error_detail": self.error_detail,
        }

    def _repr_html_(self) -> str:
        """The report in a notebook: everything ``str(report)`` says, as HTML."""
        return render_html(self)


def warning_dict(v: Violation) -> dict[str, Any]:
    """A warning as JSON: ``{"kind", "message", "why", "argument"}``."""
    return {"kind": v.kind, "message": v.message, "why": v.why, "argument": v.argument}


def warning_lines(warnings: list[Violation], indent: str = "  ") -> list[str]:
    """Each warning with its kind, then why it matters although every result is right."""
    lines = []
    for v in warnings:
        lines.append(f"{indent}- {v.message} [{v.kind}]")
        if v.why:
            lines.append(f"{indent}  Why it matters: {v.why}.")
    return lines


def text_table(rows: list[list[str]], indent: str = "") -> list[str]:
    """Rows of cells as aligned lines, columns two spaces apart (every table gradcheck prints)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]


def _table(gradients: Any) -> list[str]:
    return text_table([TABLE_HEADER] + [g.table_row() for g in gradients], "  ")


def _failure_lines(g: GradientResult) -> list[str]:
    lines = [g.headline(), f"  {g.tolerance_text()}", *[f"  {t}" for t in g.difference_texts()]]
    if g.mismatches:
        rows = [MISMATCH_HEADER, *g.mismatch_rows()]
        lines += text_table(rows, "    ")
        if g.n_mismatched > len(g.mismatches):
            lines.append(f"    ... and {g.n_mismatched - len(g.mismatches)} more")
    lines += [f"  {t}" for t in g.direction_texts()]
    if g.diagnosis:
        lines.append(f"  Most likely cause: {g.diagnosis}")
    return lines


class GradientMismatch(AssertionError):
    """Raised by the ``assert_*`` functions; the message is the full report."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(str(report))


class GradcheckWarning(UserWarning):
    """A hazard that leaves every result right (a write into ``dout`` or an input, a wrong
    backward in a mode the course never differentiates, another year's convention).

    pytest shows these in its warnings summary; ``-W error::gradcheck.GradcheckWarning``
    (or ``--gradcheck-strict``) turns them into failures.
    """


def raise_or_warn(report: Report, *, strict: bool = False, stacklevel: int = 3) -> Report:
    """Raise :class:`GradientMismatch` for a failure (or, with ``strict``, a warning);
    emit each warning as a :class:`GradcheckWarning` otherwise."""
    __tracebackhide__ = True
    if not report.passed or (strict and report.warnings):
        raise GradientMismatch(report)
    for v in report.warnings:
        warnings.warn(GradcheckWarning(f"{report.label}: {v.message} Why it matters: {v.why}."),
                      stacklevel=stacklevel)
    return report

