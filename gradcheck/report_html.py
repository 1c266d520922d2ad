"""A report as HTML, for notebooks: everything its text says, in the same words.

The summary, the table of gradients (``-`` where nothing was compared), contract
violations, warnings with why they matter, the traceback of the checked code, and for
each failing gradient its tolerance, worst entries, random directions and most likely
cause. Every piece of text from the report or the checked code is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Protocol

from gradcheck.contract import Violation
from gradcheck.results import MISMATCH_HEADER, TABLE_HEADER, GradientResult

__all__ = ["render_html"]

_COLOURS = {"passed": "#1a7f37", "warning": "#9a6700"}  # anything else: failed, red
_FAILED = "#cf222e"


class _Report(Protocol):
    """What :func:`render_html` reads of a :class:`~gradcheck.report.Report`."""

    label: str
    mode: str
    seed: int
    n_evaluations: int
    notes: list[str]
    error_detail: str

    @property
    def gradients(self) -> Mapping[str, GradientResult]: ...

    @property
    def verdict(self) -> str: ...

    @property
    def method_text(self) -> str: ...

    @property
    def failures(self) -> list[Violation]: ...

    @property
    def warnings(self) -> list[Violation]: ...


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _gradient_rows(gradients: Iterable[GradientResult]) -> list[list[str]]:
    rows = []
    for g in gradients:
        row = g.table_row()
        row.append(g.diagnosis or g.reason or "")
        rows.append(row)
    return rows


def _failure(g: GradientResult) -> str:
    parts = [f"<p><b>{escape(g.headline())}</b><br>{escape(g.tolerance_text())}<br>",
             "<br>".join(escape(t) for t in g.difference_texts()), "</p>"]
    if g.mismatches:
        parts.append(_table(MISMATCH_HEADER, g.mismatch_rows()))
        if g.n_mismatched > len(g.mismatches):
            parts.append(f"<p>... and {g.n_mismatched - len(g.mismatches)} more</p>")
    directions = g.direction_texts()
    if directions:
        parts.append(_list(escape(t) for t in directions))
    if g.diagnosis:
        parts.append(f"<p><b>Most likely cause:</b> {escape(g.diagnosis)}</p>")
    return "".join(parts)


def _sections(report: _Report) -> list[str]:
    parts = []
    if report.failures:
        parts.append("<p><b>Contract violations:</b></p>" + _list(
            f"{escape(v.message)} <code>[{escape(v.kind)}]</code>" for v in report.failures))
    if report.warnings:
        parts.append("<p><b>Warnings</b> (every result is right; strict mode makes these failures):</p>"
                     + _list(f"{escape(v.message)} <code>[{escape(v.kind)}]</code>"
                             + (f"<br><i>Why it matters: {escape(v.why)}.</i>" if v.why else "")
                             for v in report.warnings))
    if report.error_detail:
        parts.append("<p><b>Traceback of your code</b> (most recent call last):</p>"
                     f"<pre>{escape(report.error_detail)}</pre>")
    for g in report.gradients.values():
        if g.status == "failed":
            parts.append(_failure(g))
        elif g.kinks:
            parts.append(f"<p>{escape(g.kink_text())}</p>")
    if report.notes:
        parts.append("<p><b>Notes:</b></p>" + _list(escape(n) for n in report.notes))
    return parts


def render_html(report: _Report) -> str:
    """``report`` as an HTML fragment (a ``<div>``) with everything its text says."""
    verdict = report.verdict
    colour = _COLOURS.get(verdict, _FAILED)
    shown = {"warning": "passed with warnings"}.get(verdict, verdict)
    parts = [
        f"<div class='gradcheck-report'><b>gradcheck {escape(report.label)}: "
        f"<span style='color:{colour}'>{escape(shown)}</span></b><br>",
        f"<small>method: {escape(report.method_text)}; mode: {escape(report.mode)}, seed "
        f"{report.seed}, {report.n_evaluations} forward evaluations</small>",
    ]
    if report.gradients:
        parts.append(_table([*TABLE_HEADER, "note"], _gradient_rows(report.gradients.values())))
    parts += _sections(report)
    parts.append("</div>")
    return "".join(parts)
