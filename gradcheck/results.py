"""What a check found for each gradient: its verdict, the entries that disagree, the
random directions checked, and the wording every face of a report (text, HTML) shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gradcheck.kinds import Status

__all__ = ["DirectionalCheck", "GradientResult", "Mismatch", "fmt"]

TABLE_HEADER = ["gradient", "shape", "verdict", "checked", "mismatched", "max abs err", "max rel err"]
MISMATCH_HEADER = ["index", "analytic", "numeric", "difference"]


def _num(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def fmt(value: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits (never ``-0``)."""
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
    status: Status = Status.PASSED
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
        return self.status == Status.PASSED

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

    # -- wording shared by the text and HTML reports --------------------------------------

    @property
    def compared(self) -> bool:
        return self.status != Status.NOT_COMPARED

    def table_row(self) -> list[str]:
        """The cells of this gradient's row (``-`` where nothing was compared)."""
        compared = self.compared
        return [
            f"d{self.name}",
            str(self.shape),
            Status(self.status).cell,
            self.checked if compared else "-",
            str(self.n_mismatched) if compared else "-",
            f"{self.max_abs_error:.2e}" if compared else "-",
            f"{self.max_rel_error:.2e}" if compared else "-",
        ]

    def headline(self) -> str:
        """``dx: Mismatched elements: 2 / 4 (50%)``, or a mismatch along random directions."""
        if self.n_checked and not (self.directional and not self.mismatches):
            pct = 100.0 * self.n_mismatched / self.n_checked
            return f"d{self.name}: Mismatched elements: {self.n_mismatched} / {self.n_checked} ({pct:.3g}%)"
        return f"d{self.name}: mismatch along random directions"

    def tolerance_text(self) -> str:
        return ("tolerance: |analytic - numeric| <= atol + rtol * (|numeric| + scale) + error bar, "
                f"with rtol={fmt(self.rtol, 3)}, atol={fmt(self.atol, 3)}, scale={fmt(self.scale, 4)}")

    def difference_texts(self) -> list[str]:
        return [f"Max absolute difference: {fmt(self.max_abs_error, 6)}",
                f"Max relative difference: {fmt(self.max_rel_error, 6)}"]

    def mismatch_rows(self) -> list[list[str]]:
        """The worst entries: index, analytic, numeric, difference."""
        return [[str(m.index), fmt(m.analytic, 8), fmt(m.numeric, 8), fmt(m.difference, 3)]
                for m in self.mismatches]

    def direction_texts(self, most: int = 3) -> list[str]:
        """The first failing random directions, each with both sides and the tolerance."""
        return [f"along a random direction: analytic {fmt(d.analytic, 8)}, numeric "
                f"{fmt(d.numeric, 8)}, difference {fmt(d.difference, 3)} (tolerance {fmt(d.tolerance, 3)})"
                for d in [d for d in self.directional if not d.passed][:most]]

    def kink_text(self) -> str:
        """Entries on a kink, which are no failures; empty when there are none."""
        if not self.kinks:
            return ""
        return (f"d{self.name}: {len(self.kinks)} entries sit on a kink (one-sided slopes differ; the "
                f"analytic value lies between them), e.g. index {self.kinks[0]}; not counted as failures.")
