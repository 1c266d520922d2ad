"""Real students' assignment folders through ``gradcheck grade``, against independent labels.

``python -m benchmarks.grading.real label DIR`` labels every layer file (``layers.py``,
``rnn_layers.py``: the field corpus's torch labeller) and every classifier file
(``linear_svm.py``, ``softmax.py``: :mod:`benchmarks.grading.label_classifiers`) of the
folder :mod:`benchmarks.grading.students` rebuilt, each in a subprocess, into
``labels.json``. ``python -m benchmarks.grading.real compare GRADES.json`` joins them with
the JSON of ``gradcheck grade DIR --json GRADES.json`` (by student, file and layer) and
prints the agreement: correct layers passed, wrong ones failed, by kind of file. Models
are graded but not labelled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.field.agreement import SKIPPED, classify
from benchmarks.field.label import label_file as label_layers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LABELS = HERE / "labels.json"
LAYER_FILES = ("layers.py", "rnn_layers.py")
CLASSIFIER_FILES = ("linear_svm.py", "softmax.py")


def _label_classifiers(path: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="grading-label-") as tmp:
        out = Path(tmp) / "labels.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
        try:
            command = [sys.executable, "-m", "benchmarks.grading.label_classifiers", str(path), str(out)]
            subprocess.run(command, cwd=tmp, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=300, check=False)
        except subprocess.TimeoutExpired:
            return {"import": "import_error: timed out", "layers": {}}
        if not out.exists():
            return {"import": "import_error: no result", "layers": {}}
        return dict(json.loads(out.read_text()))


def label(folder: Path, only: str | None = None) -> dict[str, Any]:
    """Labels per ``student/file`` (the file relative to the student's folder); ``only``:
    ``"layers"`` or ``"classifiers"``, the files of that kind alone."""
    labels: dict[str, Any] = {}
    for student in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(student.rglob("*.py")):
            key = f"{student.name}/{path.relative_to(student)}"
            kind = "layers" if path.name in LAYER_FILES else "classifiers"
            if only not in (None, kind):
                continue
            if path.name in LAYER_FILES and path.parent.name == "cs231n":
                with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
                    flat = Path(tmp) / (key.replace("/", "__")[:-3] + ".py")
                    flat.write_bytes(path.read_bytes())
                    labels[key] = label_layers(flat, timeout=600, layer_seconds=20)
            elif path.name in CLASSIFIER_FILES and path.parent.name == "classifiers":
                labels[key] = _label_classifiers(path)
            else:
                continue
            print(f"labelled {key}: {len(labels[key].get('layers', {}))} layers", file=sys.stderr, flush=True)
    return labels


def compare(grades: dict[str, Any], labels: dict[str, Any]) -> list[dict[str, Any]]:
    """One pair per labelled layer: the label, gradcheck's verdict and the outcome."""
    rows = {(r["student"], r["file"], r["layer"]): r for r in grades["rows"]}
    imports = {(r["student"], r["file"]): r["report"] for r in grades["rows"] if r["layer"] == "import"}
    pairs = []
    for key, file_labels in sorted(labels.items()):
        student, file = key.split("/", 1)
        for layer, layer_label in sorted(file_labels.get("layers", {}).items()):
            if layer_label.get("status") in SKIPPED:
                continue
            row = rows.get((student, file, layer))
            entry = row["result"] if row is not None else None
            pair = classify(layer_label, entry, imports.get((student, file), ""))
            pair.update(student=student, file=file, layer=layer, kind="classifier" if " " in layer or
                        layer.endswith(("_naive", "_vectorized")) else "layer")
            pairs.append(pair)
    return pairs


def summary(pairs: list[dict[str, Any]]) -> str:
    lines = ["| files | labelled | correct: passed | wrong: failed | false alarms | missed | env_error |",
             "|---|---|---|---|---|---|---|"]
    for kind in ("layer", "classifier"):
        mine = [p for p in pairs if p["kind"] == kind]
        outcome = Counter(p["outcome"] for p in mine)
        correct = outcome["agree"] + outcome["false alarm"]
        wrong = outcome["caught"] + outcome["missed"]
        lines.append(f"| {kind}s | {len(mine)} | {outcome['agree']}/{correct} | {outcome['caught']}/{wrong} "
                     f"| {outcome['false alarm']} | {outcome['missed']} | {outcome['env_error']} |")
    disagreements = [p for p in pairs if p["outcome"] in ("false alarm", "missed", "not found")]
    lines += [f"- {p['outcome']}: {p['student']} {p['file']} {p['layer']}: label {p['label']} "
              f"({p['details'][:120]}), gradcheck {p['gradcheck']} ({p['reason'][:160]})"
              for p in disagreements]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grading.real")
    parser.add_argument("command", choices=("label", "compare"))
    parser.add_argument("path", type=Path,
                        help="label: the rebuilt folder; compare: the JSON of gradcheck grade")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--only", choices=("layers", "classifiers"),
                        help="label: the files of this kind alone, keeping the labels of the others")
    args = parser.parse_args(argv)
    if args.command == "label":
        labels = json.loads(args.labels.read_text()) if args.only and args.labels.exists() else {}
        labels.update(label(args.path, args.only))
        args.labels.write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
        print(f"labelled {len(labels)} files into {args.labels}")
        return 0
    pairs = compare(json.loads(args.path.read_text()), json.loads(args.labels.read_text()))
    print(summary(pairs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
