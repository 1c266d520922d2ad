"""Agreement of gradcheck's verdicts with the torch-autograd labels on the torch-course corpus.

``python -m benchmarks.field_torch DIR [--labels benchmarks/field_torch/labels.json]
[--gc-dir DIR] [--examples N] [--models] [--markdown]``

Runs ``gradcheck check FILE --device cpu --json`` on every ``DIR/<id>/<file>.py`` (stand-in
helper modules on PYTHONPATH), keeps each result in ``--gc-dir`` when given (reused on the
next run), and counts, per layer class: correct layers passed (warnings included), wrong
layers failed, false alarms (correct, FAILED) and misses (wrong, passed); ``--models``
checks and counts the models alone (``--layer`` for each of them). ``--markdown``
adds the table of agreeing layers over labelled layers, per class (the README's). A
measurement: exit status 0 whatever gradcheck says.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


MODELS = ("TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "DeepConvNet")


def _gradcheck(path: Path, stubs: Path, cache: Path | None, examples: int,
               only: tuple[str, ...] = ()) -> dict[str, Any]:
    target = cache / f"{path.parent.name}__{path.stem}.json" if cache else None
    if target is not None and target.exists():
        return json.loads(target.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(stubs), os.environ.get("PYTHONPATH", "")]))
    layers = [arg for name in only for arg in ("--layer", name)]
    run = subprocess.run([sys.executable, "-m", "gradcheck", "check", str(path), "--device", "cpu",
                          "--examples", str(examples), "--json", "-", "--quiet", *layers],
                         capture_output=True, text=True, env=env, check=False)
    try:
        result = json.loads(run.stdout)
    except json.JSONDecodeError:
        result = {"error": run.stderr.strip()[-500:], "layers": []}
    if target is not None:
        target.write_text(json.dumps(result), encoding="utf-8")
    return result  # type: ignore[no-any-return]


def agreement(labels: dict[str, Any], results: dict[str, Any]) -> tuple[Counter[str], list[str]]:
    """Counts of (label, verdict) outcomes, and a line per disagreement."""
    counts: Counter[str] = Counter()
    lines = []
    for key, layers in sorted(labels.items()):
        verdicts = {e["layer"]: e for e in results.get(key, {}).get("layers", [])}
        for layer, label in sorted(layers.items()):
            if not isinstance(label, dict) or label["label"] not in ("correct", "wrong"):
                continue
            entry = verdicts.get(layer)
            if entry is None:
                counts["not checked"] += 1
                continue
            passed = entry["verdict"] in ("passed", "warning")
            kind = {("correct", True): "correct passed", ("wrong", False): "wrong failed",
                    ("correct", False): "false alarm", ("wrong", True): "missed"}[(label["label"], passed)]
            counts[kind] += 1
            counts[f"warned {','.join(w['kind'] for w in entry['warnings'])}"] += bool(entry["warnings"])
            if kind in ("false alarm", "missed"):
                why = label.get("why", "") or entry.get("forward_message", "")[:120] or entry["gradients"]
                lines.append(f"{kind}: {key} {layer}: label {label['label']} ({why}); gradcheck "
                             f"{entry['verdict']} {entry['gradients']} {entry['contract_violations']}")
    return counts, lines


def table(labels: dict[str, Any], results: dict[str, Any]) -> str:
    """Markdown: per layer class, agreeing over labelled layers, split by label."""
    rows: dict[str, Counter[str]] = {}
    for key, layers in labels.items():
        verdicts = {e["layer"]: e for e in results.get(key, {}).get("layers", [])}
        for layer, label in layers.items():
            if not isinstance(label, dict) or label["label"] not in ("correct", "wrong"):
                continue
            row = rows.setdefault(layer, Counter())
            entry = verdicts.get(layer)
            passed = entry is not None and entry["verdict"] in ("passed", "warning")
            row[label["label"]] += 1
            row[f"{label['label']} agreed"] += entry is not None and passed == (label["label"] == "correct")
    lines = ["| layer class or model | correct: passed | wrong: FAILED | all |", "|---|---|---|---|"]
    total: Counter[str] = Counter()
    for group, members in (("layers", sorted(r for r in rows if not _is_model(r))),
                           ("models", sorted(r for r in rows if _is_model(r)))):
        subtotal: Counter[str] = Counter()
        for layer in members:
            subtotal.update(rows[layer])
            lines.append(_row(layer, rows[layer]))
        if members:
            lines.append(_row(f"**{group}**", subtotal))
        total.update(subtotal)
    lines.append(_row("**all**", total))
    return "\n".join(lines)


def _is_model(label: str) -> bool:
    """``TwoLayerNet``, ``DeepConvNet(batchnorm)``: the course's models end in ``Net``."""
    return label.split("(")[0].endswith("Net")


def _row(name: str, c: Counter[str]) -> str:
    def cell(kind: str) -> str:
        return f"{c[kind + ' agreed']}/{c[kind]}" if c[kind] else ""

    agreed = c["correct agreed"] + c["wrong agreed"]
    return f"| {name} | {cell('correct')} | {cell('wrong')} | {agreed}/{c['correct'] + c['wrong']} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.field_torch")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--labels", type=Path, default=HERE / "labels.json")
    parser.add_argument("--gc-dir", type=Path)
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--only", nargs="+", metavar="ID/FILE")
    parser.add_argument("--markdown", action="store_true", help="also print the per-class table")
    parser.add_argument("--models", action="store_true",
                        help="only the models (gradcheck check --layer NAME for each)")
    args = parser.parse_args(argv)
    labels = json.loads(args.labels.read_text(encoding="utf-8"))
    if args.only:
        labels = {k: v for k, v in labels.items() if k in args.only}
    if args.models:
        labels = {k: {name: v for name, v in layers.items() if _is_model(name)}
                  for k, layers in labels.items()}
    if args.gc_dir:
        args.gc_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for key in sorted(labels):
        results[key] = _gradcheck(args.dir / key, args.dir / "_stubs", args.gc_dir, args.examples,
                                  MODELS if args.models else ())
        print(f"checked {key}", file=sys.stderr)
    counts, lines = agreement(labels, results)
    for name, n in sorted(counts.items()):
        if n:
            print(f"{name}: {n}")
    print("\n".join(lines))
    if args.markdown:
        print(table(labels, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
