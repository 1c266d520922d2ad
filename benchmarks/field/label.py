"""Independent labels for the field corpus, from torch autograd (never from gradcheck).

``python -m benchmarks.field.label DIR [--out benchmarks/field/labels.json] [--only ID ...]
[--missing] [--jobs N] [--timeout S]``

Every ``DIR/<id>.py`` is imported in its own subprocess (see :mod:`benchmarks.field.worker`);
each layer whose functions the file defines gets six random cases inside the CS231n contract,
and its forward and backward are compared with torch. The labels are merged into the labels
file (sorted keys, indent 1): the files labelled this run replace their old entries, and a
full run (no --only / --missing) drops entries whose file is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.field.specs import SPECS

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_OUT = HERE / "labels.json"


def layers_in_source(text: str) -> list[str]:
    """Layers whose functions appear as top-level defs (used when the file cannot be imported)."""
    defined = set(re.findall(r"^def\s+(\w+)\s*\(", text, re.M))
    return [s.name for s in SPECS if s.forward in defined and (s.backward is None or s.backward in defined)]


def label_file(path: Path, timeout: float, layer_seconds: int) -> dict[str, Any]:
    file_id = path.stem
    with tempfile.TemporaryDirectory(prefix="field-label-") as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED="0", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
        cmd = [sys.executable, "-m", "benchmarks.field.worker", str(path.resolve()), file_id, str(out),
               str(layer_seconds)]
        note = ""
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout, check=False)
            if proc.returncode != 0:
                note = f"worker exited with status {proc.returncode}"
        except subprocess.TimeoutExpired:
            note = f"file timed out after {timeout:.0f} s"
        result = json.loads(out.read_text()) if out.exists() else None
    return _complete(path, result, note)


def _complete(path: Path, result: dict[str, Any] | None, note: str) -> dict[str, Any]:
    """Fill in layers a dead worker never reached; label every layer of an unimportable file."""
    expected = layers_in_source(path.read_text(errors="replace"))
    if result is None:
        result = {"import": f"import_error: {note or 'no result'}", "layers": {}}
    if result["import"] != "ok":
        error = {"status": "import_error", "details": result["import"]}
        result["layers"] = {name: dict(error) for name in expected}
        return result
    for name in expected:
        if name not in result["layers"] and note:
            result["layers"][name] = {"status": "crash", "correct": False, "culprits": ["timeout"],
                                      "details": note}
    return result


def load(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"files": {}}


def save(path: Path, labels: dict[str, Any]) -> None:
    import torch

    labels["labeller"] = f"torch {torch.__version__}"
    path.write_text(json.dumps(labels, sort_keys=True, indent=1) + "\n")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.field.label",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="directory of <id>.py student files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="+", metavar="ID", help="label only these ids")
    parser.add_argument("--missing", action="store_true", help="label only ids not yet in the labels file")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per file (default 120)")
    parser.add_argument("--layer-seconds", type=int, default=20, help="seconds per layer (default 20)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a directory", file=sys.stderr)
        return 2
    paths = {p.stem: p for p in sorted(args.dir.glob("*.py"))}
    labels = load(args.out)
    ids = sorted(paths)
    if args.only:
        unknown = sorted(set(args.only) - set(paths))
        if unknown:
            print(f"error: no such file id(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        ids = sorted(args.only)
    elif args.missing:
        ids = [i for i in ids if i not in labels["files"]]
    else:
        labels["files"] = {k: v for k, v in labels["files"].items() if k in paths}
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        done = pool.map(lambda i: (i, label_file(paths[i], args.timeout, args.layer_seconds)), ids)
        for n, (file_id, result) in enumerate(done, 1):
            labels["files"][file_id] = result
            summary = ", ".join(f"{k}:{v.get('status')}" for k, v in sorted(result["layers"].items()))
            print(f"[{n}/{len(ids)}] {file_id}: {result['import'][:60]} {summary}", flush=True)
            if n % 10 == 0:
                save(args.out, labels)
    save(args.out, labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
