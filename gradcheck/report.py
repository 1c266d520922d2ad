"""Results of a check: per-gradient verdicts and a report that explains itself.

``str(report)`` is the product: a header with the method and cost, a table of gradients,
then for each failure the tolerances used, the mismatch count, the worst entries with
analytic, numeric and difference, and the most likely cause.
"""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from gradcheck.contract import Violation

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


def _num(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _g(value: float, digits: int = 4) -> str:
    return f"{value + 0.0:.{digits}g}"


@dataclass
class Mismatch:
    """One entry where analytic and numeric disagree beyond tolerance."""

    index: tuple[int, ...]
    analytic: float
    numeric: float
    difference: float
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": list(self.index),
            "analytic": _num(self.analytic),
            "numeric": _num(self.numeric),
            "difference": _num(self.difference),
            "tolerance": _num(self.tolerance),
        }


@dataclass
class DirectionalCheck:
    """``<analytic, v>`` against the numeric derivative along one random direction ``v``."""

    analytic: float
    numeric: float
    difference: float
    tolerance: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "analytic": _num(self.analytic),
            "numeric": _num(self.numeric),
            "difference": _num(self.difference),
            "tolerance": _num(self.tolerance),
            "passed": self.passed,
        }


@dataclass
class GradientResult:
    """The verdict on one gradient ``d<name>``.

    ``status`` is ``"passed"``, ``"failed"`` or ``"not compared"`` (when a contract breach,
    such as a wrong shape, made a comparison impossible; ``reason`` says which).
    """

    name: str
    shape: tuple[int, ...]
    status: str = "passed"
    n_checked: int = 0
    n_mismatched: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple[int, ...] | None = None
    rtol: float = 0.0
    atol: float = 0.0
    scale: float = 0.0
    mismatches: list[Mismatch] = field(default_factory=list)
    kinks: list[tuple[int, ...]] = field(default_factory=list)
    directional: list[DirectionalCheck] = field(default_factory=list)
    diagnosis: str | None = None
    reason: str = ""
    checked: str = ""
    escalated: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": f"d{self.name}",
            "argument": self.name,
            "shape": list(self.shape),
            "status": self.status,
            "passed": self.passed,
            "n_checked": self.n_checked,
            "n_mismatched": self.n_mismatched,
            "max_abs_error": _num(self.max_abs_error),
            "max_rel_error": _num(self.max_rel_error),
            "worst_index": list(self.worst_index) if self.worst_index is not None else None,
            "rtol": _num(self.rtol),
            "atol": _num(self.atol),
            "scale": _num(self.scale),
            "mismatches": [m.to_dict() for m in self.mismatches],
            "kinks": [list(k) for k in self.kinks],
            "directional": [d.to_dict() for d in self.directional],
            "diagnosis": self.diagnosis,
            "reason": self.reason,
            "checked": self.checked,
            "escalated": self.escalated,
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
    def verdict(self) -> str:
        """``"passed"``, ``"warning"`` (passed, with warnings) or ``"FAILED"``."""
        if not self.passed:
            return "FAILED"
        return "warning" if self.warnings else "passed"

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failed_gradients(self) -> list[str]:
        return [name for name, g in self.gradients.items() if not g.passed]

    # -- renderings ---------------------------------------------------------------------

    def _method_text(self) -> str:
        text = METHOD_NAMES.get(self.method, self.method)
        return f"{text} ({self.method_note})" if self.method_note else text

    def __str__(self) -> str:
        verdict = {"warning": "passed with warnings"}.get(self.verdict, self.verdict)
        lines = [
            f"gradcheck {self.label}: {verdict}",
            f"  method: {self._method_text()}",
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
                lines += ["", f"d{g.name}: {len(g.kinks)} entries sit on a kink (one-sided "
                          f"slopes differ; the analytic value lies between them), e.g. "
                          f"index {g.kinks[0]}; not counted as failures."]
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
        verdict = self.verdict
        colour = {"passed": "#1a7f37", "warning": "#9a6700"}.get(verdict, "#cf222e")
        rows = []
        for g in self.gradients.values():
            cell = "ok" if g.passed else g.status
            rows.append(
                "<tr>"
                f"<td><code>d{html.escape(g.name)}</code></td><td>{g.shape}</td>"
                f"<td>{html.escape(cell)}</td><td>{g.n_mismatched} / {g.n_checked}</td>"
                f"<td>{_g(g.max_abs_error)}</td><td>{_g(g.max_rel_error)}</td>"
                f"<td>{html.escape(g.diagnosis or g.reason or '')}</td></tr>"
            )
        parts = [
            f"<div><b>gradcheck {html.escape(self.label)}: "
            f"<span style='color:{colour}'>{verdict}</span></b><br>",
            f"<small>{html.escape(self._method_text())}; mode {html.escape(self.mode)}; "
            f"seed {self.seed}; {self.n_evaluations} forward evaluations</small>",
            "<table><tr><th>gradient</th><th>shape</th><th>verdict</th><th>mismatched</th>"
            "<th>max abs error</th><th>max rel error</th><th>most likely cause</th></tr>",
            *rows,
            "</table>",
        ]
        if self.failures:
            parts.append("<ul>" + "".join(
                f"<li>{html.escape(v.message)}</li>" for v in self.failures) + "</ul>")
        if self.warnings:
            parts.append("<b>Warnings</b> (every result is right):<ul>" + "".join(
                f"<li>{html.escape(v.message)} <i>Why it matters: {html.escape(v.why)}.</i></li>"
                for v in self.warnings) + "</ul>")
        parts.append("</div>")
        return "".join(parts)


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


def _table(gradients: Any) -> list[str]:
    header = ["gradient", "shape", "verdict", "checked", "mismatched", "max abs err", "max rel err"]
    rows = [header]
    for g in gradients:
        verdict = {"passed": "ok", "failed": "FAILED"}.get(g.status, g.status)
        compared = g.status != "not compared"
        rows.append([
            f"d{g.name}",
            str(g.shape),
            verdict,
            g.checked if compared else "-",
            str(g.n_mismatched) if compared else "-",
            f"{g.max_abs_error:.2e}" if compared else "-",
            f"{g.max_rel_error:.2e}" if compared else "-",
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _failure_lines(g: GradientResult) -> list[str]:
    lines = []
    if g.n_checked and not (g.directional and not g.mismatches):
        pct = 100.0 * g.n_mismatched / g.n_checked
        lines.append(
            f"d{g.name}: Mismatched elements: {g.n_mismatched} / {g.n_checked} ({pct:.3g}%)"
        )
    else:
        lines.append(f"d{g.name}: mismatch along random directions")
    lines.append(
        "  tolerance: |analytic - numeric| <= atol + rtol * (|numeric| + scale) + error bar, "
        f"with rtol={_g(g.rtol, 3)}, atol={_g(g.atol, 3)}, scale={_g(g.scale, 4)}"
    )
    lines.append(f"  Max absolute difference: {_g(g.max_abs_error, 6)}")
    lines.append(f"  Max relative difference: {_g(g.max_rel_error, 6)}")
    if g.mismatches:
        rows = [["index", "analytic", "numeric", "difference"]]
        for m in g.mismatches:
            rows.append([str(m.index), _g(m.analytic, 8), _g(m.numeric, 8), _g(m.difference, 3)])
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines += ["    " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        if g.n_mismatched > len(g.mismatches):
            lines.append(f"    ... and {g.n_mismatched - len(g.mismatches)} more")
    failing = [d for d in g.directional if not d.passed]
    for d in failing[:3]:
        lines.append(
            f"  along a random direction: analytic {_g(d.analytic, 8)}, numeric "
            f"{_g(d.numeric, 8)}, difference {_g(d.difference, 3)} (tolerance {_g(d.tolerance, 3)})"
        )
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

