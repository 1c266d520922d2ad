"""Real students' classifiers and models through ``gradcheck check``, against independent labels.

The folder :mod:`benchmarks.grading.course` rebuilt holds, per student, assignment 1's
classifiers and the models of assignments 1 and 2 inside the student's own ``cs231n/``
package. Three steps::

    python -m benchmarks.grading.course_run label DIR          # -> course_labels.json (committed)
    python -m benchmarks.grading.course_run check DIR OUT.json  # gradcheck check --json, per student
    python -m benchmarks.grading.course_run compare OUT.json    # agreement per kind and year

``label`` runs :mod:`benchmarks.grading.label_classifiers` (torch autograd) on each
``linear_svm.py``/``softmax.py`` and :mod:`benchmarks.grading.label_models` (torch and the
labeller's own central differences) on each ``neural_net.py``/``fc_net.py``/``cnn.py``, one
subprocess per file, never gradcheck. ``check`` runs one ``gradcheck check`` on every
``classifiers/`` folder that holds a target, as a student would on their folder. ``compare``
joins both by file and label: correct ones that passed agree, wrong ones that failed are
caught; env_error labels (the course's unbuilt compiled extension) are counted apart.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.field.agreement import SKIPPED, classify
from benchmarks.grading.course import CLASSIFIER_FILES, read_manifest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LABELS = HERE / "course_labels.json"
KINDS = ("classifier", "naive vs vectorized", "TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet")


def _targets(folder: Path) -> dict[str, Path]:
    """``student/dest`` -> the rebuilt file, for every target of the manifest."""
    return {f"{r['student']}/{r['dest']}": folder / r["student"] / r["dest"]
            for r in read_manifest() if r["target"] == "1"}


def _label_one(path: Path) -> dict[str, Any]:
    module = ("benchmarks.grading.label_classifiers" if path.name in CLASSIFIER_FILES
              else "benchmarks.grading.label_models")
    with tempfile.TemporaryDirectory(prefix="course-label-") as tmp:
        out = Path(tmp) / "labels.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
        try:
            subprocess.run([sys.executable, "-m", module, str(path), str(out)], cwd=tmp, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=900, check=False)
        except subprocess.TimeoutExpired:
            return {"import": "import_error: timed out", "layers": {}}
        if not out.exists():
            return {"import": "import_error: no result", "layers": {}}
        return dict(json.loads(out.read_text()))


def label(folder: Path, jobs: int, only: str | None = None) -> dict[str, Any]:
    targets = {k: v for k, v in _targets(folder).items() if only is None or only in (v.name, k.split("/")[0])}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = dict(zip(targets, pool.map(_label_one, targets.values())))
    for key, result in results.items():
        statuses = Counter(v.get("status") for v in result.get("layers", {}).values())
        print(f"labelled {key}: {result.get('import')}, {dict(statuses)}", file=sys.stderr)
    return results


def check(folder: Path, out: Path, jobs: int, timeout: float) -> None:
    """gradcheck's JSON entries per ``student/dest`` and label into ``out``: one ``gradcheck
    check`` of every ``classifiers/`` folder holding a target (a folder's unimportable file
    is an ERROR row there, and the run goes on)."""
    targets = _targets(folder)
    folders = sorted({str(path.parent) for path in targets.values()})
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        result = Path(tmp) / "gc.json"
        command = [sys.executable, "-m", "gradcheck", "check", *folders, "--json", str(result),
                   "--quiet", "--jobs", str(jobs), "--timeout", "300"]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout, check=False)
        if not result.exists():
            raise SystemExit(f"gradcheck check wrote no JSON (status {proc.returncode}):\n"
                             f"{proc.stderr[-3000:]}")
        data = json.loads(result.read_text())
    files: dict[str, Any] = {key: {"layers": {}, "error": ""} for key in targets}
    for entry in data["layers"]:
        key = str(Path(entry["file"]).resolve().relative_to(folder.resolve()))
        if key not in files:
            continue
        if entry["layer"] == Path(key).name and entry["verdict"] == "ERROR":  # the file failed to import
            files[key]["error"] = entry["error"]
        else:
            files[key]["layers"][entry["layer"]] = entry
    out.write_text(json.dumps(files, indent=1, sort_keys=True) + "\n")
    print(f"checked {len(folders)} folders ({len(targets)} target files) in "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)


def kind_of(layer: str) -> str:
    if " vs " in layer:
        return "naive vs vectorized"
    if layer.endswith(("_naive", "_vectorized")):
        return "classifier"
    return layer.split("(")[0]


def compare(checked: dict[str, Any], labels: dict[str, Any]) -> list[dict[str, Any]]:
    pairs = []
    for key, file_labels in sorted(labels.items()):
        result = checked.get(key, {"layers": {}, "error": "not checked"})
        file_error = file_labels.get("import", "ok") if file_labels.get("import") != "ok" else ""
        for layer, layer_label in sorted(file_labels.get("layers", {}).items()):
            if layer_label.get("status") in SKIPPED:
                continue
            entry = result["layers"].get(layer)
            pair = classify(layer_label, entry, result.get("error") or file_error)
            pair.update(file=key, layer=layer, kind=kind_of(layer), year=key[:4])
            pairs.append(pair)
    return pairs


def summary(pairs: list[dict[str, Any]]) -> str:
    lines = ["| kind | labelled | correct: passed | wrong: failed (named right) | false alarms | missed "
             "| env_error |", "|---|---|---|---|---|---|---|"]
    for kind in [*KINDS, "all"]:
        mine = [p for p in pairs if kind in ("all", p["kind"])]
        n = Counter(p["outcome"] for p in mine)
        named = sum(bool(p.get("named_right")) for p in mine)
        correct, wrong = n["agree"] + n["false alarm"], n["caught"] + n["missed"]
        lines.append(f"| {kind} | {len(mine) - n['env_error']} | {n['agree']}/{correct} "
                     f"| {n['caught']}/{wrong} ({named}) | {n['false alarm']} "
                     f"| {n['missed']} | {n['env_error']} |")
    lines += ["", *_by_year(pairs), ""]
    lines += [f"- {p['outcome']}: {p['file']} {p['layer']}: label {p['label']} ({p['details'][:140]}), "
              f"gradcheck {p['gradcheck']} ({p['reason'][:200]})"
              for p in pairs if p["outcome"] in ("false alarm", "missed", "not found")
              or (p["outcome"] == "caught" and not p.get("named_right"))]
    return "\n".join(lines)


def _by_year(pairs: list[dict[str, Any]]) -> list[str]:
    judged = [p for p in pairs if p["outcome"] not in ("env_error", "not found")]
    kinds = [k for k in KINDS if any(p["kind"] == k for p in judged)]
    lines = ["| year | " + " | ".join(kinds) + " | all |", "|---|" + "---|" * (len(kinds) + 1)]
    for year in [*sorted({p["year"] for p in judged}), "all"]:
        cells = []
        for kind in [*kinds, "all"]:
            sel = [p for p in judged if year in ("all", p["year"]) and kind in ("all", p["kind"])]
            cells.append(f"{sum(p['outcome'] in ('agree', 'caught') for p in sel)}/{len(sel)}" if sel else "")
        lines.append(f"| {year} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grading.course_run")
    parser.add_argument("command", choices=("label", "check", "compare"))
    parser.add_argument("path", type=Path, help="label, check: the rebuilt folder; compare: check's JSON")
    parser.add_argument("out", nargs="?", type=Path, help="check: the JSON to write")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--only", metavar="NAME", help="label: only the files of this name (fc_net.py) or "
                        "student, keeping the labels of the others")
    parser.add_argument("--jobs", type=int, default=1, help="files labelled, or layers checked, at once")
    parser.add_argument("--timeout", type=float, default=7200.0, help="check: seconds in all")
    args = parser.parse_args(argv)
    if args.command == "label":
        labels = json.loads(args.labels.read_text()) if args.only and args.labels.exists() else {}
        labels.update(label(args.path, args.jobs, args.only))
        args.labels.write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
        print(f"labelled {len(labels)} files into {args.labels}")
    elif args.command == "check":
        if args.out is None:
            parser.error("check needs the JSON to write")
        check(args.path, args.out, args.jobs, args.timeout)
        print(f"wrote {args.out}")
    else:
        pairs = compare(json.loads(args.path.read_text()), json.loads(args.labels.read_text()))
        print(summary(pairs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
