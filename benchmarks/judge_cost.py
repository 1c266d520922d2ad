"""What the judge/worker split costs: ``gradcheck check`` now against a revision before it.

``python -m benchmarks.judge_cost [FILES or DIRS ...] [--baseline REV] [--limit N]
[--jobs N] [--examples N]``

The baseline revision (default ``7bdd001``, the last commit where the whole checker ran in
the worker with the checked code) is exported with ``git archive`` into a temporary
folder. Each file is then checked by both, alternating which goes first, with the same
options, one ``python -m gradcheck check FILE --json -`` process each (with the field
benchmark's stand-ins for the course modules on the path); the table gives
the wall time of each and their ratio, and the verdicts of both (they should agree). With
no files, the field corpus at ``/work/field/files`` when present, else ``examples/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from statistics import median

from benchmarks.field.agreement import write_stubs

ROOT = Path(__file__).resolve().parents[1]


def _export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision],
                             capture_output=True, check=True).stdout
    target = into / "baseline"
    target.mkdir()
    with tempfile.TemporaryFile() as fh:
        fh.write(archive)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(target, filter="data")
    return target


def _run(source: Path, path: Path, args: argparse.Namespace) -> tuple[float, dict[str, str]]:
    # the course modules a field file imports (cs231n, past): the field benchmark's stubs
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(source), str(args.stubs)]))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gradcheck", "check", str(path), "--json", "-", "--quiet",
                           "--jobs", str(args.jobs), "--examples", str(args.examples)],
                          capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), check=False)
    seconds = time.perf_counter() - started
    try:
        layers = json.loads(proc.stdout)["layers"]
    except (ValueError, KeyError):
        return seconds, {}
    return seconds, {f"{e.get('file', '')}:{e['layer']}": e["verdict"] for e in layers}


def _files(paths: list[str], limit: int) -> list[Path]:
    if not paths:
        field = Path("/work/field/files")
        paths = [str(field if field.is_dir() else ROOT / "examples")]
    found: list[Path] = []
    for p in map(Path, paths):
        found += sorted(p.glob("*.py")) if p.is_dir() else [p]
    return [f for f in found if not f.name.startswith("_")][:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--baseline", default="7bdd001")
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--examples", type=int, default=10)
    args = parser.parse_args(argv)
    files = _files(args.paths, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = _export(args.baseline, Path(tmp))
        args.stubs = Path(tmp) / "stubs"
        write_stubs(args.stubs)
        rows, ratios, agree = [], [], 0
        print(f"| file | before ({args.baseline}) s | judge/worker s | ratio | verdicts agree |")
        print("|---|---|---|---|---|")
        for i, path in enumerate(files):
            order = [("before", baseline), ("after", ROOT)]
            runs = {name: _run(source, path, args) for name, source in (order if i % 2 == 0 else order[::-1])}
            (t0, v0), (t1, v1) = runs["before"], runs["after"]
            same = v0 == v1
            agree += same
            ratios.append(t1 / t0)
            rows.append((t0, t1))
            print(f"| {path.name} | {t0:.1f} | {t1:.1f} | {t1 / t0:.2f} | {'yes' if same else 'NO'} |",
                  flush=True)
    total0, total1 = sum(r[0] for r in rows), sum(r[1] for r in rows)
    print(f"\n{len(files)} files: {total0:.1f} s before, {total1:.1f} s with the judge/worker split "
          f"(total ratio {total1 / total0:.2f}, median per file {median(ratios):.2f}); "
          f"verdicts agree on {agree} of {len(files)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
