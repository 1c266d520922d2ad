"""``course rebuild --build-ext``: each cs231n/ folder's own setup.py builds its extension as
the course's Cython did (a .pyx without a language level read as Python 2), identical
folders share one build, and a folder that does not build is said, not a crash."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.grading.build_ext import build_all, build_one

pytest.importorskip("Cython")

SETUP = """from setuptools import setup
from setuptools import Extension
from Cython.Build import cythonize

setup(ext_modules=cythonize([Extension('halves', ['halves.pyx'])]))
"""
# C integer division as the course's .pyx files write it (out_h = (H + 2 * pad - HH) / stride + 1)
PYX = "def half(int a):\n    cdef int b = a / 2\n    return b\n"


def course_folder(root, student, pyx=PYX):
    folder = root / student / "assignment2" / "cs231n"
    folder.mkdir(parents=True)
    (folder / "setup.py").write_text(SETUP)
    (folder / "halves.pyx").write_text(pyx)
    return folder


def half_of_7(folder) -> str:
    return subprocess.run([sys.executable, "-c", "import halves; print(halves.half(7))"], cwd=folder,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_identical_folders_share_one_build_and_a_broken_one_is_named(tmp_path, capsys):
    ada, ben = course_folder(tmp_path, "ada"), course_folder(tmp_path, "ben")
    course_folder(tmp_path, "cy", pyx="def half(int a)\n    return a\n")  # no colon
    assert build_all(tmp_path) == 1
    assert half_of_7(ada) == half_of_7(ben) == "3"  # Python 2's int / int
    assert not (ben / "build").exists()  # a copy of ada's build
    captured = capsys.readouterr()
    assert "built the extension in 2 of 3 cs231n/ folders" in captured.out
    assert "not built: cy/assignment2/cs231n:" in captured.err


def test_a_folder_without_a_pyx_is_not_built(tmp_path):
    folder = course_folder(tmp_path, "ada")
    (folder / "halves.pyx").unlink()
    assert build_one(folder) == "no .pyx file beside setup.py"
