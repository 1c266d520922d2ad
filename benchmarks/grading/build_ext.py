"""Building the course's compiled extension in rebuilt students' folders, as the course did.

Assignment 2's fast layers (``ThreeLayerConvNet`` uses them) import ``im2col_cython``, built
in each ``cs231n/`` folder by the course's instruction ``python setup.py build_ext
--inplace``. :func:`build_all` runs each folder's own ``setup.py`` that way, with one
difference the course's years make necessary: Cython 3 reads a ``.pyx`` that names no
language level as Python 3 (``int / int`` is a float there, and the course's
``cdef int out_h = (H + 2 * pad - HH) / stride + 1`` does not compile), while the Cython of
the course's years (0.x) read it as Python 2; the build passes ``language_level=2`` to
``cythonize``, as those years compiled it. Cython comes with the ``field`` extra.

Most folders hold the course's files unchanged: a folder whose ``setup.py`` and ``.pyx``
files are byte for byte those of a folder already built gets a copy of that build (and the
C compiler runs without optimisation: the checks call the extension on tiny arrays).

``python -m benchmarks.grading.course rebuild DIR --mirror M --build-ext`` calls it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["build_all", "build_one"]

# the folder's own setup.py, run with cythonize reading .pyx files as the course's Cython did
_SETUP = """
import runpy, sys
import Cython.Build as build
_cythonize = build.cythonize
def cythonize(*args, **kwargs):
    directives = dict(kwargs.pop("compiler_directives", None) or {})
    directives.setdefault("language_level", 2)
    return _cythonize(*args, compiler_directives=directives, **kwargs)
build.cythonize = cythonize
sys.argv = ["setup.py", *sys.argv[1:]]
runpy.run_path("setup.py", run_name="__main__")
"""
TIMEOUT = 600.0


def build_one(folder: Path) -> str:
    """Build the extension of one ``cs231n/`` folder; "" when it was built, else why not."""
    if not any(folder.glob("*.pyx")):
        return "no .pyx file beside setup.py"
    try:
        proc = subprocess.run([sys.executable, "-c", _SETUP, "build_ext", "--inplace"], cwd=folder,
                              env=dict(os.environ, CFLAGS="-O0 -g0"), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT:.0f} s"
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit status {proc.returncode}")[:300]
    if not any(folder.glob("*.so")):
        return "setup.py ran but built no extension"
    return ""


def _sources(folder: Path) -> str:
    """A digest of what a build of ``folder`` reads: its setup.py and .pyx files."""
    digest = hashlib.sha256()
    for path in [folder / "setup.py", *sorted(folder.glob("*.pyx"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_all(out: Path) -> int:
    """Build every ``cs231n/setup.py`` under ``out``; prints what failed; returns the count."""
    folders = sorted(path.parent for path in out.glob("*/*/cs231n/setup.py"))
    failed: dict[Path, str] = {}
    built: dict[str, Path | None] = {}  # sources -> the folder built from them (None: failed)
    for folder in folders:
        same = built.get(_sources(folder), False)
        if same is False:
            why = build_one(folder)
            built[_sources(folder)] = None if why else folder
        elif same is None:
            why = failed[next(f for f in failed if _sources(f) == _sources(folder))]
        else:
            for library in same.glob("*.so"):
                shutil.copy2(library, folder / library.name)
            why = ""
        if why:
            failed[folder] = why
            print(f"not built: {folder.relative_to(out)}: {why}", file=sys.stderr)
    print(f"built the extension in {len(folders) - len(failed)} of {len(folders)} cs231n/ folders")
    return len(failed)
