"""What ``gradcheck grade`` writes: CSV rows, JSON, and an HTML student x layer matrix
with a per-layer summary of the most common diagnoses.

The summary sorts each row's diagnosis into a short common cause (``slice the padding
off with [p:-p]``) by the wording :mod:`gradcheck.diagnose` and the isolation give it, and
counts students per layer and cause: ``conv: 9 of 24 slice the padding off with [p:-p]``.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections import Counter, defaultdict
from typing import Any

from gradcheck.grade import SEPARATOR, VERDICTS, Row

__all__ = ["CSV_COLUMNS", "cause", "common_causes", "write_csv", "write_html", "write_json"]

CSV_COLUMNS = ("student", "file", "layer", "verdict", "gradients", "diagnosis", "case", "seconds", "flag")

# (pattern in a diagnosis, the cause as "N of M students ..." reads it), first match wins
_CAUSES = (
    (r"\[p:-p\]", "slice the padding off with [p:-p]"),
    (r"memory limit", "exceed the memory limit"),
    (r"timed out", "time out"),
    (r"crashed the Python interpreter|ended the Python process", "crash the interpreter or exit"),
    (r"not installed here|compiled extension", "need a package not installed here"),
    (r"SyntaxError|IndentationError|TabError", "have a syntax error"),
    (r"^cannot be imported", "cannot be imported"),
    (r"^forward:", "compute a wrong forward"),
    (r"of the true gradient \(N = \d+ is the batch size\)", "divide by the batch size once too often"),
    (r"times the true gradient \(N = \d+ is the batch size\)", "never divide by the batch size"),
    (r"is the length of axis", "scale by an axis length"),
    (r"factor of 2", "are off by a factor of 2"),
    (r"wrong sign", "have a gradient's sign wrong"),
    (r"transpose", "transpose a gradient"),
    (r"feed more than one output", "assign with = where overlapping contributions add up (+=)"),
    (r"all zeros", "return an all-zero gradient"),
    (r"zero where the numeric gradient is not|non-zero exactly where", "take a mask from the wrong array"),
    (r"only for batch element", "get only some batch elements wrong"),
    (r"border rows", "get the border (padding) wrong"),
    (r"row/column: check that the", "ignore the stride in the backward pass"),
    (r"broadcast|summed over axes|extra leading axes", "return a gradient of the wrong shape (broadcasting)"),
    (r"shape", "return a gradient of the wrong shape"),
    (r"nondetermin|random", "are not deterministic"),
    (r"returned None|returns None", "leave a gradient unimplemented (None)"),
    (r"raised|Error\b", "raise an exception"),
    (r"^warning \[([\w-]+)\]", r"pass with a warning (\1)"),
    (r"^d(\w+) wrong \(no single cause fits\)", r"get d\1 wrong"),
)


def cause(diagnosis: str) -> str:
    """The common cause a diagnosis names, in a few words (or its first clause)."""
    for pattern, words in _CAUSES:
        found = re.search(pattern, diagnosis)
        if found:
            return found.expand(words)
    return diagnosis.split(":")[0][:60] or "unknown"


def common_causes(rows: list[Row]) -> dict[str, list[tuple[str, int, int]]]:
    """Per layer, each cause with the number of students it fits and the number of
    students the layer was found for, most common first (passed rows have none)."""
    students: dict[str, set[str]] = defaultdict(set)
    causes: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        students[row.layer].add(row.student)
        if row.verdict == "passed":
            continue
        for part in row.diagnosis.split(SEPARATOR) if row.diagnosis else [row.verdict]:
            causes[row.layer][cause(part)].add(row.student)
    return {
        layer: sorted(((c, len(who), len(students[layer])) for c, who in found.items()),
                      key=lambda item: (-item[1], item[0]))
        for layer, found in sorted(causes.items())
    }


def write_csv(rows: list[Row], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([row.student, row.file, row.layer, row.verdict, row.gradients,
                             row.diagnosis, row.case, f"{row.seconds:.2f}", row.flag])


def write_json(rows: list[Row], path: str, header: dict[str, Any]) -> None:
    counts = Counter(row.verdict for row in rows)
    payload = dict(header, verdicts={v: counts.get(v, 0) for v in VERDICTS},
                   rows=[row.to_dict() for row in rows])
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")


_STYLE = """body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}
td,th{border:1px solid #bbb;padding:2px 6px;vertical-align:top;font-size:13px}
th.layer{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
td.passed{background:#b7e1b0}td.warning{background:#f6e08a}td.failed{background:#f2a3a3}
td.error{background:#c9b2e0}td.missing{background:#eee;color:#888}
summary{cursor:pointer}pre{white-space:pre-wrap;font-size:12px;max-width:70em}
section{margin-top:1em}details:target{outline:2px solid #36c}.flag{color:#a00;font-weight:bold}"""
# a cell's link opens the report it points to
_SCRIPT = ("<script>function openHash(){var d=document.getElementById(location.hash.slice(1));"
           "if(d&&d.tagName==='DETAILS'){d.open=true;}}"
           "window.addEventListener('hashchange',openHash);openHash();</script>")
_WORST = {v: i for i, v in enumerate(VERDICTS)}


def write_html(rows: list[Row], path: str, title: str) -> None:
    """A student x layer matrix (colour per verdict; a cell opens the reports of its
    rows), the per-layer causes, and the reports themselves."""
    layers = list(dict.fromkeys(row.layer for row in rows))
    roster = list(dict.fromkeys(row.student for row in rows))
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        cells[(row.student, row.layer)].append(index)
    counts = Counter(row.verdict for row in rows)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             "<p>" + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
             + f" over {len(roster)} students and {len(layers)} layers. Click a cell for its report.</p>",
             "<table><tr><th>student</th>"
             + "".join(f"<th class='layer'>{html.escape(layer)}</th>" for layer in layers) + "</tr>"]
    for student in roster:
        parts.append(f"<tr><th>{html.escape(student)}</th>")
        parts += [_cell(rows, cells.get((student, layer), [])) for layer in layers]
        parts.append("</tr>")
    parts.append("</table>")
    parts += _causes_html(rows)
    parts.append("<h2>Reports</h2>")
    parts += [_report_html(index, row) for index, row in enumerate(rows)]
    parts.append(_SCRIPT + "</body></html>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts) + "\n")


def _cell(rows: list[Row], indices: list[int]) -> str:
    if not indices:
        return "<td class='missing' title='not found'>-</td>"
    verdict = max((rows[i].verdict for i in indices), key=_WORST.__getitem__)
    links = " ".join(f"<a href='#r{i}' title='{html.escape(rows[i].diagnosis or rows[i].verdict)}'>"
                     f"{html.escape(rows[i].verdict)}</a>" + _flag(rows[i]) for i in indices)
    return f"<td class='{verdict}'>{links}</td>"


def _flag(row: Row) -> str:
    """A mark on a cell whose layer hands in the checker's own reference."""
    if not row.flag:
        return ""
    return (" <span class='flag' title='imports the checker&apos;s reference implementation'>"
            "&#9873; reference</span>")


def _causes_html(rows: list[Row]) -> list[str]:
    found = common_causes(rows)
    if not found:
        return []
    parts = ["<section><h2>Most common causes, per layer</h2><ul>"]
    for layer, causes in found.items():
        text = "; ".join(f"{n} of {total} {html.escape(c)}" for c, n, total in causes[:4])
        parts.append(f"<li><b>{html.escape(layer)}</b>: {text}</li>")
    parts.append("</ul></section>")
    return parts


def _report_html(index: int, row: Row) -> str:
    summary = f"{row.student} / {row.file} / {row.layer}: {row.verdict}"
    if row.diagnosis:
        summary += f" - {row.diagnosis[:160]}"
    return (f"<details id='r{index}'><summary>{html.escape(summary)}</summary>"
            f"<pre>{html.escape(row.report)}</pre></details>")
