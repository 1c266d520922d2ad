"""Where the suite runs: the sdist ships what its tests need (every top-level folder of this
repository the tests import from or name), and without torch the torch tests skip cleanly."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _sdist_include() -> list[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [entry.strip("/") for entry in config["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]]


def _names_used_by_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    return names


def test_sdist_ships_every_folder_the_tests_use():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    used = folders & _names_used_by_tests()
    assert {"benchmarks", "examples", "gradcheck", "reference_layers"} <= used
    missing = sorted(used - set(_sdist_include()))
    assert not missing, f"the tests use {missing}, which the sdist does not ship"


def test_sdist_ships_the_tests_and_what_they_read():
    assert {"tests", "conftest.py", "README.md"} <= set(_sdist_include())


def test_without_torch_the_torch_tests_skip_cleanly(pytester):
    # torch hidden as if it were not installed
    pytester.makepyfile(hide_torch='''
        import sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoTorch())
    ''')
    tests = [str(ROOT / "tests" / "layers" / name) for name in ("test_conv_layers.py", "test_pooling_layers.py")]
    result = pytester.runpytest_subprocess(*tests, "-p", "hide_torch", "-k", "torch", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=3)
    assert "Failing explicit example" not in result.stdout.str()
    result.stdout.fnmatch_lines(["SKIPPED [[]*[]] *could not import 'torch'*"])
