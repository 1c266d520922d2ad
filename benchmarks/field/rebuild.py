"""Rebuild the field corpus of student CS231n files from ``manifest.csv``.

Usage::

    python -m benchmarks.field.rebuild DIR [--mirror /path/to/mirrors] [--no-download]

Only the manifest (repository, path, commit, sha256) is committed; the students' code is not.
For every manifest row this script fetches the exact bytes of ``PATH`` at ``COMMIT``, checks them
against the recorded sha256 and writes them to ``DIR/<id>.py``.

Bytes come from a local git mirror when ``--mirror`` is given and holds the repository, otherwise
from ``https://raw.githubusercontent.com/{repo}/{commit}/{path}``. A mirror directory holds one
entry per repository named ``<owner>+<name>``; the git directory is that entry itself, or its
``repo`` subdirectory (bare), or ``repo/.git`` (a checkout), or ``.git`` inside it.

Prints a one-line summary and exits with status 1 if any file is missing or has a checksum
mismatch.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent / "manifest.csv"
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def git_dir(mirror: Path, repo: str) -> Path | None:
    """Locate the git directory of ``repo`` inside a mirror directory.

    Parameters
    ----------
    mirror : Path
        Directory holding one ``<owner>+<name>`` entry per repository.
    repo : str
        Repository as ``owner/name``.

    Returns
    -------
    Path or None
        The git directory, or None when the mirror does not hold the repository.
    """
    base = mirror / repo.replace("/", "+", 1)
    for cand in (base / "repo" / ".git", base / "repo", base / ".git", base, Path(f"{base}.git")):
        if (cand / "HEAD").is_file() and (cand / "objects").is_dir():
            return cand
    return None


def from_mirror(mirror: Path, repo: str, commit: str, path: str) -> bytes | None:
    """Read ``path`` at ``commit`` from the local mirror of ``repo``.

    Parameters
    ----------
    mirror : Path
        Directory of git mirrors (see :func:`git_dir`).
    repo, commit, path : str
        Repository ``owner/name``, full commit hash and file path inside the repository.

    Returns
    -------
    bytes or None
        The file's exact bytes, or None if the mirror lacks the repository, commit or path.
    """
    gd = git_dir(mirror, repo)
    if gd is None:
        return None
    proc = subprocess.run(
        ["git", "--git-dir", str(gd), "show", f"{commit}:{path}"], capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def from_github(repo: str, commit: str, path: str, timeout: float = 30.0) -> bytes | None:
    """Download ``path`` at ``commit`` from raw.githubusercontent.com.

    Parameters
    ----------
    repo, commit, path : str
        Repository ``owner/name``, full commit hash and file path inside the repository.
    timeout : float, optional
        Seconds to wait for the server.

    Returns
    -------
    bytes or None
        The file's bytes, or None on any network or HTTP error.
    """
    url = RAW_URL.format(repo=repo, commit=commit, path=urllib.parse.quote(path))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError, ValueError):
        return None


def rebuild(out_dir: Path, mirror: Path | None, download: bool = True, manifest: Path = MANIFEST) -> int:
    """Rebuild every manifest row into ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Directory to write ``<id>.py`` files into (created if needed).
    mirror : Path or None
        Directory of git mirrors to read from first; None to download only.
    download : bool, optional
        Fall back to downloading from GitHub when the mirror cannot supply a file.
    manifest : Path, optional
        The manifest CSV to read.

    Returns
    -------
    int
        Process exit status: 0 when every file was rebuilt and verified, 1 otherwise.
    """
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = mismatched = 0
    for row in rows:
        repo, commit, path = row["repo"], row["commit"], row["path"]
        data = from_mirror(mirror, repo, commit, path) if mirror is not None else None
        if data is None and download:
            data = from_github(repo, commit, path)
        if data is None:
            missing += 1
            print(f"missing: {row['id']} ({repo}@{commit[:12]}:{path})", file=sys.stderr)
            continue
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            mismatched += 1
            print(f"checksum mismatch: {row['id']} ({repo}@{commit[:12]}:{path})", file=sys.stderr)
            continue
        (out_dir / f"{row['id']}.py").write_bytes(data)
    ok = len(rows) - missing - mismatched
    print(f"rebuilt {ok} of {len(rows)} files; {missing} missing, {mismatched} checksum mismatches")
    return 1 if missing or mismatched else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.field.rebuild", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("dir", type=Path, help="directory to write the corpus into")
    parser.add_argument("--mirror", type=Path, default=None, help="directory of <owner>+<name> git mirrors")
    parser.add_argument(
        "--no-download", action="store_true", help="never download from GitHub, use the mirror only"
    )
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="manifest CSV (default: %(default)s)")
    args = parser.parse_args(argv)
    return rebuild(args.dir, args.mirror, download=not args.no_download, manifest=args.manifest)


if __name__ == "__main__":
    sys.exit(main())
