"""Rebuild the torch-course corpus (EECS 498/598 A3 files) from ``manifest.csv``.

Usage::

    python -m benchmarks.field_torch.rebuild DIR [--mirror /work/.mirror] [--no-download]

Only the manifest (repository, path, commit, sha256) is committed, never the students' code.
Each repository's files go to ``DIR/<id>/`` under their own names (the convolutional file
imports the student's own ``fully_connected_networks``), and ``DIR/_stubs`` gets stand-ins
for the course's helper modules the files import: ``a3_helper`` with the course's
``softmax_loss`` and ``svm_loss`` (the models call them; written here, not copied), and
``eecs598`` (its ``Solver`` is never called). Exits 1 when a file is missing or its
checksum differs.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

from benchmarks.field.rebuild import from_github, from_mirror

MANIFEST = Path(__file__).resolve().parent / "manifest.csv"

# the course's losses, as examples/a3_helper.py writes them (not the course's file)
_A3_HELPER = (Path(__file__).resolve().parents[2] / "examples" / "a3_helper.py").read_text(encoding="utf-8")

_STUBS = {
    "a3_helper.py": _A3_HELPER,
    "eecs598/__init__.py": '"""Stand-in for the course package."""\n\n\nclass Solver:\n'
                           "    def __init__(self, *args, **kwargs):\n"
                           "        raise NotImplementedError('eecs598 stand-in')\n",
}


def write_stubs(out_dir: Path) -> Path:
    """The stand-in helper modules under ``out_dir/_stubs``; returns that directory."""
    stubs = out_dir / "_stubs"
    for name, text in _STUBS.items():
        target = stubs / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return stubs


def rebuild(out_dir: Path, mirror: Path | None, download: bool = True, manifest: Path = MANIFEST) -> int:
    """Write every manifest row to ``out_dir/<id>/<file name>``; returns the number of problems."""
    problems = 0
    with open(manifest, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        data = from_mirror(mirror, row["repo"], row["commit"], row["path"]) if mirror else None
        if data is None and download:
            data = from_github(row["repo"], row["commit"], row["path"])
        if data is None or hashlib.sha256(data).hexdigest() != row["sha256"]:
            problems += 1
            print(f"{row['id']} {row['path']}: {'missing' if data is None else 'sha256 differs'}",
                  file=sys.stderr)
            continue
        target = out_dir / row["id"] / Path(row["path"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    write_stubs(out_dir)
    print(f"{len(rows) - problems} of {len(rows)} files in {out_dir}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.field_torch.rebuild")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--mirror", type=Path)
    parser.add_argument("--no-download", action="store_true")
    args = parser.parse_args(argv)
    return 1 if rebuild(args.dir, args.mirror, download=not args.no_download) else 0


if __name__ == "__main__":
    raise SystemExit(main())
