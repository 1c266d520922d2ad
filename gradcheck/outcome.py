"""What is known about one candidate layer after its generated cases ran.

An :class:`Outcome` travels from the worker process to the command line (as JSON), so it
holds plain data: verdicts per gradient, contract breaches, warnings, the smallest failing
case and the text of its report. In its JSON, gradients are named as the text names them
(``"dx"``); in Python, after the argument (``"x"``).

Three verdicts: ``passed``, ``warning`` (passed, with a hazard that leaves every result
right: a write into ``dout`` or an input, a wrong backward in a mode the course never
differentiates, another course year's convention) and ``FAILED``; ``ERROR`` when the
layer could not be checked at all (a timeout, a crash of the interpreter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradcheck.contract import Violation
from gradcheck.kinds import Status, Verdict
from gradcheck.report import Report, warning_dict

__all__ = ["Outcome"]

def _argument(gradient: str) -> str:
    """``"x"`` for the gradient ``"dx"`` (JSON names gradients as the text does)."""
    return gradient[1:]


@dataclass
class Outcome:
    """Everything known about one candidate layer after its cases ran."""

    spec: str
    functions: tuple[str, str | None]
    kind: str = "layer"  # "layer", "agreement" (naive against vectorized) or "model"
    n_cases: int = 0
    n_skipped: int = 0
    n_evaluations: int = 0
    forward: str = "ok"
    gradients: dict[str, str] = field(default_factory=dict)
    contract: list[str] = field(default_factory=list)
    failing_case: str | None = None
    forward_message: str = ""
    report: Report | None = None
    report_text: str = ""
    report_dict: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    file: str = ""  # the file it was found in, when the command line checks files
    output: str = ""  # what the checked code printed

    @property
    def passed(self) -> bool:
        """No failure (warnings allowed)."""
        return (
            not self.error
            and self.forward == "ok"
            and not self.contract
            and all(v == "ok" for v in self.gradients.values())
        )

    @property
    def verdict(self) -> Verdict:
        """``passed``, ``warning``, ``FAILED`` or ``ERROR``."""
        if self.error:
            return Verdict.ERROR
        if not self.passed:
            return Verdict.FAILED
        return Verdict.WARNING if self.warnings else Verdict.PASSED

    def passes(self, strict: bool = False) -> bool:
        """The verdict as an exit status sees it: with ``strict``, warnings fail too."""
        return self.passed and not (strict and self.warnings)

    def add_warning(self, violation: Violation, case: str | None = None) -> None:
        """Keep the first warning of each kind (with the case it showed on)."""
        if any(w["kind"] == violation.kind for w in self.warnings):
            return
        entry = warning_dict(violation)
        if case:
            entry["case"] = case
        self.warnings.append(entry)

    def finding_lines(self) -> list[str]:
        """What failed, as text: the error, or the smallest failing case, the forward's
        verdict and the report of that case."""
        if self.error:
            return [f"  {self.error}"]
        lines = [f"  smallest failing case: {self.failing_case}"] if self.failing_case else []
        if self.forward == "FAILED":
            lines.append(f"  forward: {self.forward_message}")
        if self.report_text:
            lines += ["", self.report_text]
        return lines

    def warning_lines(self) -> list[str]:
        """Each warning as text: kind, message and case, then why it matters."""
        lines = []
        for w in self.warnings:
            case = f" (case {w['case']})" if w.get("case") else ""
            lines.append(f"  warning [{w['kind']}]: {w['message']}{case}")
            if w.get("why"):
                lines.append(f"    why it matters although every result is right: {w['why']}.")
        return lines

    def take_verdicts(self, report: Report) -> None:
        """Gradient verdicts, contract breaches and warnings from a case's report."""
        cells = {v.argument: v.kind.gradient_cell for v in report.failures if v.argument}
        for name, g in report.gradients.items():
            if g.status == Status.NOT_COMPARED:
                self.gradients[name] = cells.get(name) or "-"
            else:
                self.gradients[name] = Status(g.status).cell
        self.contract += [v.kind for v in report.failures if v.kind.gradient_cell is None]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        """The inverse of :meth:`to_dict` (the report comes back as text and a dict)."""
        outcome = cls(spec=data["layer"], functions=(data["forward_function"], data["backward_function"]))
        outcome.kind = data.get("kind", "layer")
        outcome.n_cases = data["cases"]
        outcome.n_skipped = data["skipped_cases"]
        outcome.n_evaluations = data["forward_evaluations"]
        outcome.forward = data["forward"]
        outcome.forward_message = data["forward_message"]
        outcome.gradients = {_argument(key): v for key, v in data["gradients"].items()}
        outcome.contract = data["contract_violations"]
        outcome.failing_case = data["failing_case"]
        outcome.notes = data["notes"]
        outcome.warnings = data.get("warnings", [])
        outcome.error = data["error"]
        outcome.seconds = data["seconds"]
        outcome.report_text = data["report_text"] or ""
        outcome.report_dict = data["report"]
        outcome.output = data.get("output", "")
        return outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.spec,
            "kind": self.kind,
            "forward_function": self.functions[0],
            "backward_function": self.functions[1],
            "passed": self.passed,
            "verdict": self.verdict,
            "cases": self.n_cases,
            "skipped_cases": self.n_skipped,
            "forward_evaluations": self.n_evaluations,
            "forward": self.forward,
            "forward_message": self.forward_message,
            "gradients": {f"d{name}": v for name, v in self.gradients.items()},
            "contract_violations": list(self.contract),
            "warnings": [dict(w) for w in self.warnings],
            "failing_case": self.failing_case,
            "report": self.report.to_dict() if self.report is not None else self.report_dict,
            "report_text": self.report_text,
            "notes": list(self.notes),
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "output": self.output,
        }
