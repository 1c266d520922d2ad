"""Run gradcheck on the field corpus and join its verdicts with the torch labels.

Per (file, layer) pair: label correct and gradcheck passed = agree; correct and FAILED (or
gradcheck error) = false alarm; label wrong and FAILED = caught (named right when gradcheck's
failing parts include every culprit of the label); wrong and passed = missed. Labels
``unimplemented`` and ``import_error`` are skipped; ``env_error`` (the code crashes only in
this Python/NumPy) is reported apart; a labelled layer gradcheck did not report is "not found".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SKIPPED = ("unimplemented", "import_error")
SMALL = 1e-3  # a wrong label whose largest relative error is below this is a small deviation


_STUB = """def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    def stub(*args, **kwargs):
        raise NotImplementedError(name + " is a stub of the course module")
    return stub
"""
STUB_FILES = {
    "cs231n/__init__.py": "",
    "cs231n/layers.py": "from reference_layers import *  # noqa\n",
    "cs231n/fast_layers.py": _STUB, "cs231n/layer_utils.py": _STUB, "cs231n/im2col.py": _STUB,
    "cs231n/im2col_cython.py": _STUB, "cs231n/rnn_layers.py": _STUB,
    "past/__init__.py": "",
    "past/builtins.py": "xrange = range\nbasestring = str\nunicode = str\nlong = int\n",
}


def write_stubs(root: Path) -> None:
    """The course modules a student file may import (as the labeller's worker serves them)."""
    for rel, text in STUB_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def run_gradcheck(path: Path, strict: bool, timeout: float) -> dict[str, Any]:
    """{'layers': {name: entry}, 'exit': code, 'error': text} for one student file.

    gradcheck runs in a scratch directory with stub ``cs231n`` and ``past`` packages on
    PYTHONPATH, as a student would run it inside the assignment tree.
    """
    with tempfile.TemporaryDirectory(prefix="field-gc-") as tmp:
        out = Path(tmp) / "gc.json"
        write_stubs(Path(tmp) / "stubs")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(tmp) / "stubs"),
                                                                       os.environ.get("PYTHONPATH")])))
        cmd = [sys.executable, "-m", "gradcheck", "check", str(path.resolve()), "--json", str(out),
               "--quiet", "--jobs", "1"]
        if strict:
            cmd.append("--strict")
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout, check=False, errors="replace")
        except subprocess.TimeoutExpired:
            return {"layers": {}, "exit": None, "error": f"gradcheck timed out after {timeout:.0f} s"}
        data = json.loads(out.read_text()) if out.exists() else None
    tail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or [""])[-1][:300]
    if data is None:
        error = tail or f"exit status {proc.returncode}, no JSON"
        return {"layers": {}, "exit": proc.returncode, "error": error}
    return {"layers": {e["layer"]: e for e in data.get("layers", [])}, "exit": proc.returncode, "error": "",
            "unmatched": data.get("unmatched", [])}


def failing_parts(entry: dict[str, Any]) -> set[str]:
    parts = {"forward"} if entry.get("forward") not in (None, "ok") else set()
    parts |= {g for g, v in (entry.get("gradients") or {}).items() if v != "ok"}
    return parts


def named_right(label: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Does gradcheck's failing set name every culprit of the label?

    A wrong forward makes the torch-relative gradients wrong too, while gradcheck differentiates
    the student's own forward: with a forward culprit only the forward (and running statistics)
    must be named. A gradient the label saw crash counts as named when gradcheck reports any
    failing gradient or a contract violation.
    """
    parts = failing_parts(entry)
    violations = [str(v) for v in entry.get("contract_violations") or []]
    text = " ".join([*violations, entry.get("forward_message") or ""])
    culprits = list(label.get("culprits", []))
    if "forward" in culprits:
        culprits = [c for c in culprits if c in ("forward", "running_stats", "convention")]
    crashed = {n for n, v in (label.get("gradients") or {}).items() if v == "crash"}
    for culprit in culprits:
        if culprit in parts or f" {culprit} " in f" {text} ":
            continue
        if culprit in ("running_stats", "convention") and "forward" in parts:
            continue
        if culprit in crashed and (parts - {"forward"} or violations or entry.get("error")):
            continue
        if culprit == "timeout" and entry.get("error"):
            continue
        return False
    return True


def reason(entry: dict[str, Any] | None, file_error: str = "") -> str:
    """The first line of gradcheck's explanation for a verdict."""
    if entry is None:
        return file_error or "not reported"
    for text in (entry.get("forward_message"), *(entry.get("contract_violations") or []), entry.get("error")):
        if text:
            return str(text).strip().splitlines()[0][:300]
    bad = sorted(g for g, v in (entry.get("gradients") or {}).items() if v != "ok")
    if bad:
        verdicts = ", ".join(f"{g} {entry['gradients'][g]}" for g in bad)
        return f"{verdicts} at {entry.get('failing_case')}"
    notes = entry.get("notes") or []
    return str(notes[0]).splitlines()[0][:300] if notes else ("passed" if entry.get("passed") else "FAILED")


def classify(label: dict[str, Any], entry: dict[str, Any] | None, file_error: str) -> dict[str, Any]:
    status = label.get("status")
    if entry is None:
        verdict = "error" if file_error else "not found"
    else:
        verdict = "passed" if entry.get("passed") else ("error" if entry.get("error") else "FAILED")
    errors = [label.get("forward_error"), label.get("running_stats_error"),
              *(label.get("gradient_errors") or {}).values()]
    finite = [e for e in errors if e is not None]
    shapes_or_crashes = any(v not in ("ok", "wrong") for v in (label.get("gradients") or {}).values())
    pair: dict[str, Any] = {"label": status, "culprits": label.get("culprits", []),
                            "label_max_error": max(finite) if finite and not shapes_or_crashes else None,
                            "details": label.get("details", ""), "gradcheck": verdict,
                            "reason": reason(entry, file_error) if verdict != "passed" else "",
                            "warnings": [w.get("kind", "?") for w in (entry or {}).get("warnings") or []]}
    if status == "env_error":
        pair["outcome"] = "env_error"
        pair["env_status"] = label.get("env_status")
        pair["details"] = label.get("env_details", "")
    elif verdict == "not found":
        pair["outcome"] = "not found"
    elif label.get("correct"):
        pair["outcome"] = "agree" if verdict == "passed" else "false alarm"
    elif verdict == "passed":
        pair["outcome"] = "missed"
    else:
        pair["outcome"] = "caught"
        pair["named_right"] = entry is not None and named_right(label, entry)
    return pair


def join(file_id: str, labels: dict[str, Any], gc: dict[str, Any], year: str) -> list[dict[str, Any]]:
    pairs = []
    for layer, label in sorted(labels.get("layers", {}).items()):
        if label.get("status") in SKIPPED:
            continue
        pair = classify(label, gc["layers"].get(layer), gc.get("error", ""))
        pairs.append({"id": file_id, "year": year, "layer": layer, **pair})
    return pairs


def summarise(pairs: list[dict[str, Any]], n_files: int) -> dict[str, Any]:
    judged = [p for p in pairs if p["outcome"] not in ("env_error", "not found")]
    correct = [p for p in judged if p["outcome"] in ("agree", "false alarm")]
    wrong = [p for p in judged if p["outcome"] in ("caught", "missed")]
    return {
        "files": n_files,
        "pairs": len(judged),
        "correct": len(correct),
        "correct_passed": sum(p["outcome"] == "agree" for p in correct),
        "correct_passed_with_warnings": sum(p["outcome"] == "agree" and bool(p["warnings"]) for p in correct),
        "wrong": len(wrong),
        "wrong_failed": sum(p["outcome"] == "caught" for p in wrong),
        "named_right": sum(bool(p.get("named_right")) for p in wrong),
        "false_alarms": sum(p["outcome"] == "false alarm" for p in judged),
        "missed": sum(p["outcome"] == "missed" for p in judged),
        "missed_small": sum(p["outcome"] == "missed" and (p["label_max_error"] or 1.0) < SMALL
                            for p in judged),
        "not_found": sum(p["outcome"] == "not found" for p in pairs),
        "env_error": sum(p["outcome"] == "env_error" for p in pairs),
    }


def summary_line(s: dict[str, Any]) -> str:
    line = (f"field corpus: {s['files']} files, {s['pairs']} labelled layer pairs: "
            f"{s['correct_passed']}/{s['correct']} correct passed ({s['correct_passed_with_warnings']} with "
            f"warnings), {s['wrong_failed']}/{s['wrong']} wrong failed ({s['named_right']} named right); "
            f"{s['false_alarms']} false alarms, {s['missed']} missed")
    extra = [f"{s['missed_small']} of the misses off by < {SMALL:g} relative"] if s["missed_small"] else []
    extra += [f"{s['not_found']} not found"] if s["not_found"] else []
    extra += [f"{s['env_error']} env_error pairs apart"] if s["env_error"] else []
    return line + (f" ({', '.join(extra)})" if extra else "")


def table(pairs: list[dict[str, Any]]) -> tuple[list[str], list[str], dict[str, dict[str, str]]]:
    """Years x layers: 'agreeing/labelled' per cell (env_error and not-found pairs left out)."""
    judged = [p for p in pairs if p["outcome"] not in ("env_error", "not found")]
    years = sorted({p["year"] for p in judged})
    layers = sorted({p["layer"] for p in judged})
    cells: dict[str, dict[str, str]] = {}
    for year in [*years, "all"]:
        row = {}
        for layer in [*layers, "all"]:
            sel = [p for p in judged if year in ("all", p["year"]) and layer in ("all", p["layer"])]
            if sel:
                row[layer] = f"{sum(p['outcome'] in ('agree', 'caught') for p in sel)}/{len(sel)}"
        cells[year] = row
    return years, layers, cells
