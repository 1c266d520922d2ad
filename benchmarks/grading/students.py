"""Real students' assignment folders: a manifest, how it was made, and the rebuild.

``python -m benchmarks.grading.students collect --mirror /work/.mirror`` writes
``students.csv``: for each student below (repositories of the field corpus, at the commit
pinned there), every ``.py`` file of each ``cs231n/`` package of their assignments, with
its sha256. ``python -m benchmarks.grading.students rebuild DIR [--mirror M]`` writes
them back as ``DIR/<student>/<assignment>/cs231n/...`` (one student per entry, as
``gradcheck grade DIR`` reads it). Only the manifest is committed, never the students'
code.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.field.rebuild import MANIFEST as FIELD_MANIFEST
from benchmarks.field.rebuild import from_github, from_mirror, git_dir

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "students.csv"
COLUMNS = ("student", "year", "repo", "commit", "path", "dest", "sha256", "bytes")
# one student (repository) per course year or two, each with all their assignments
REPOS = ("zhongnanf/cs231n_2016_hws", "shijiaxin/cs231n_winter2016", "AKSoo/CS231n-2017",
         "agisga/CS231n_2018_solutions", "CodeJjang/cs231n-2019", "1204al/cs231n_2019",
         "jvenepal/cs231n-spring2020", "0suh/cs231n_2021", "Chants77/CS231n-2022Spring",
         "karltan0328/cs231n-spring-2023-assignments", "whizhou/cs231n", "RonaldLN/cs231n_sp25")


def _pinned() -> dict[str, tuple[str, str]]:
    """repo -> (commit, year) as the field corpus pinned them."""
    with open(FIELD_MANIFEST, newline="", encoding="utf-8") as fh:
        return {row["repo"]: (row["commit"], row["year"]) for row in csv.DictReader(fh)}


def collect(mirror: Path) -> list[dict[str, str]]:
    rows = []
    pinned = _pinned()
    for repo in REPOS:
        commit, year = pinned[repo]
        gd = git_dir(mirror, repo)
        if gd is None:
            raise SystemExit(f"{repo} is not in the mirror {mirror}")
        listing = subprocess.run(["git", "--git-dir", str(gd), "ls-tree", "-r", "--name-only", commit],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
        student = f"{year}_{repo.split('/')[0]}"
        for path in sorted(p for p in listing if "/cs231n/" in p and p.endswith(".py")):
            assignment, inside = path.rsplit("/cs231n/", 1)
            data = from_mirror(mirror, repo, commit, path)
            if data is None:
                continue
            dest = f"{Path(assignment).name}/cs231n/{inside}"
            rows.append({"student": student, "year": year, "repo": repo, "commit": commit, "path": path,
                         "dest": dest, "sha256": hashlib.sha256(data).hexdigest(), "bytes": str(len(data))})
    return rows


def write_rows(rows: list[dict[str, str]], out: Path, mirror: Path | None) -> int:
    """Write each manifest row's file to ``out/<student>/<dest>`` (from a mirror, else
    GitHub), checking its sha256; returns the number of files missing or changed."""
    missing = 0
    for row in rows:
        data = from_mirror(mirror, row["repo"], row["commit"], row["path"]) if mirror else None
        if data is None:
            data = from_github(row["repo"], row["commit"], row["path"])
        if data is None or hashlib.sha256(data).hexdigest() != row["sha256"]:
            missing += 1
            print(f"missing or changed: {row['repo']} {row['path']}", file=sys.stderr)
            continue
        target = out / row["student"] / row["dest"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return missing


def _count(rows: list[dict[str, str]]) -> str:
    return f"{len(rows)} files of {len({r['student'] for r in rows})} students"


def rebuild(out: Path, mirror: Path | None) -> int:
    """Write every manifest row under ``out``; returns the number of files missing."""
    with open(MANIFEST, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing = write_rows(rows, out, mirror)
    print(f"rebuilt {len(rows) - missing} of {_count(rows)} into {out}")
    return missing


def manifest_main(prog: str, argv: list[str] | None, manifest: Path, columns: tuple[str, ...],
                  collect: Callable[[Path], list[dict[str, str]]],
                  rebuild: Callable[[Path, Path | None], int],
                  count: Callable[[list[dict[str, str]]], str] = _count,
                  build_ext: Callable[[Path], int] | None = None) -> int:
    """``collect --mirror M`` (write ``manifest`` from git mirrors) or ``rebuild DIR
    [--mirror M]``: the command line of a corpus manifest; with ``build_ext``, ``rebuild
    --build-ext`` also calls it on the rebuilt folder (its failures do not fail the rebuild)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("command", choices=("collect", "rebuild"))
    parser.add_argument("out", nargs="?", type=Path, help="the folder to rebuild into")
    parser.add_argument("--mirror", type=Path, default=None, help="a folder of git mirrors <owner>+<name>")
    if build_ext is not None:
        parser.add_argument("--build-ext", action="store_true",
                            help="rebuild: then build each package's compiled extension with its own "
                                 "setup.py (needs Cython: pip install '.[field]')")
    args = parser.parse_args(argv)
    if args.command == "collect":
        if args.mirror is None:
            parser.error("collect needs --mirror")
        rows = collect(args.mirror)
        with open(manifest, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, columns)
            writer.writeheader()
            writer.writerows(rows)
        print(f"{count(rows)} in {manifest}")
        return 0
    if args.out is None:
        parser.error("rebuild needs the folder to write into")
    missing = rebuild(args.out, args.mirror)
    if build_ext is not None and args.build_ext:
        build_ext(args.out)
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    return manifest_main("python -m benchmarks.grading.students", argv, MANIFEST, COLUMNS, collect, rebuild)


if __name__ == "__main__":
    raise SystemExit(main())
