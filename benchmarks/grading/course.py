"""Real students' classifiers and models: a manifest, how it was made, and the rebuild.

Every repository of the field corpus (one student each, at the commit pinned there) that
holds assignment 1's classifiers (``classifiers/linear_svm.py``, ``softmax.py``,
``neural_net.py``) or the models of assignment 2 (``classifiers/fc_net.py``, ``cnn.py``)
contributes those files as *targets*, one copy of each distinct file, and every other
``.py`` file of the same ``cs231n/`` package as *support*: the student's own
``layers.py``, ``layer_utils.py`` and ``fast_layers.py`` a model is built from, the
``__init__.py`` files that make the package importable, and the course's
``im2col_cython.pyx`` with the ``setup.py`` that builds it.

``python -m benchmarks.grading.course collect --mirror /work/.mirror`` writes
``course.csv`` (repository, commit, path, sha256 per file);
``python -m benchmarks.grading.course rebuild DIR [--mirror M]`` writes the files back as
``DIR/<student>/<assignment>/cs231n/...``; with ``--build-ext``, each folder's compiled
extension is then built with its own ``setup.py`` (:mod:`benchmarks.grading.build_ext`).
Only the manifest is committed, never the students' code.
:mod:`benchmarks.grading.course_run` labels, checks and compares them.
"""

from __future__ import annotations

import csv
import hashlib
import subprocess
from pathlib import Path

from benchmarks.field.rebuild import MANIFEST as FIELD_MANIFEST
from benchmarks.field.rebuild import from_mirror, git_dir
from benchmarks.grading.build_ext import build_all
from benchmarks.grading.students import manifest_main, write_rows

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "course.csv"
COLUMNS = ("student", "year", "repo", "commit", "path", "dest", "target", "sha256", "bytes")
CLASSIFIER_FILES = ("linear_svm.py", "softmax.py")
MODEL_FILES = ("neural_net.py", "fc_net.py", "cnn.py")
TARGETS = CLASSIFIER_FILES + MODEL_FILES


def _pinned() -> dict[str, tuple[str, str]]:
    """repo -> (commit, year) as the field corpus pinned them."""
    with open(FIELD_MANIFEST, newline="", encoding="utf-8") as fh:
        return {row["repo"]: (row["commit"], row["year"]) for row in csv.DictReader(fh)}


def _is_target(path: str) -> bool:
    return "/cs231n/classifiers/" in f"/{path}" and path.rsplit("/", 1)[-1] in TARGETS


def _assignment(path: str) -> str:
    """The folder holding the ``cs231n/`` package of ``path`` ("" at the repository's root)."""
    return path.rsplit("/cs231n/", 1)[0] if "/cs231n/" in path else ""


def _repo_rows(mirror: Path, repo: str, commit: str, year: str) -> list[dict[str, str]]:
    """The targets of one repository (each distinct file once) and their packages' files."""
    gd = git_dir(mirror, repo)
    if gd is None:
        raise SystemExit(f"{repo} is not in the mirror {mirror}")
    listing = subprocess.run(["git", "--git-dir", str(gd), "ls-tree", "-r", "--name-only", commit],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    seen: set[str] = set()
    targets: set[str] = set()
    for path in sorted(p for p in listing if _is_target(p)):
        data = from_mirror(mirror, repo, commit, path)
        digest = hashlib.sha256(data).hexdigest() if data is not None else ""
        if data is not None and digest not in seen:
            seen.add(digest)
            targets.add(path)
    packages = {_assignment(p) for p in targets}
    files = {p: from_mirror(mirror, repo, commit, p) for p in listing
             if p.endswith((".py", ".pyx")) and "/cs231n/" in f"/{p}" and _assignment(p) in packages}
    student = f"{year}_{repo.split('/')[0]}"
    rows = []
    for path, data in sorted(files.items()):
        assignment = _assignment(path)
        if data is None:
            continue
        inside = path[len(assignment) + 1:] if assignment else path
        folder = assignment.replace("/", "_") or "root"
        rows.append({"student": student, "year": year, "repo": repo, "commit": commit, "path": path,
                     "dest": f"{folder}/{inside}", "target": "1" if path in targets else "0",
                     "sha256": hashlib.sha256(data).hexdigest(), "bytes": str(len(data))})
    return rows


def collect(mirror: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for repo, (commit, year) in sorted(_pinned().items(), key=lambda kv: (kv[1][1], kv[0].lower())):
        rows += _repo_rows(mirror, repo, commit, year)
    return rows


def read_manifest(manifest: Path = MANIFEST) -> list[dict[str, str]]:
    with open(manifest, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _count(rows: list[dict[str, str]]) -> str:
    targets = sum(r["target"] == "1" for r in rows)
    return f"{len(rows)} files ({targets} targets) of {len({r['student'] for r in rows})} students"


def rebuild(out: Path, mirror: Path | None, manifest: Path = MANIFEST) -> int:
    """Write every manifest row under ``out``; returns the number of files missing."""
    rows = read_manifest(manifest)
    missing = write_rows(rows, out, mirror)
    print(f"rebuilt {len(rows) - missing} of {_count(rows)} into {out}")
    return missing


def main(argv: list[str] | None = None) -> int:
    return manifest_main("python -m benchmarks.grading.course", argv, MANIFEST, COLUMNS, collect, rebuild,
                         _count, build_ext=build_all)


if __name__ == "__main__":
    raise SystemExit(main())
