"""Imports a file never uses that fail here (an editor's auto-import such as ``from
sqlalchemy import true``, found in the course corpus): the package is checked without them,
each layer passes with the ``stray_import`` warning, and an import the code does use is
still the one-line error naming what to install."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import textwrap
from pathlib import Path

import pytest

from gradcheck.cli import main
from gradcheck.stray_imports import Missing, replace_stray_imports, stray_import_findings

ASSIGNMENT = Path(__file__).resolve().parent / "fixtures" / "assignment"
ABSENT = "gradcheck_absent_package"


@pytest.fixture
def package(tmp_path: Path) -> Path:
    folder = tmp_path / "assignment"
    shutil.copytree(ASSIGNMENT, folder)
    (folder / "cs231n" / "classifiers" / "__init__.py").write_text(
        "from cs231n.classifiers.k_nearest_neighbor import *\n")
    return folder


def knn_with(package: Path, text: str) -> None:
    (package / "cs231n" / "classifiers" / "k_nearest_neighbor.py").write_text(textwrap.dedent(text))


def check_json(tmp_path: Path, target: Path) -> tuple[int, dict[str, dict]]:
    out = tmp_path / "out.json"
    status = main(["check", str(target), "--json", str(out), "--examples", "4", "--quiet"])
    return status, {e["layer"]: e for e in json.loads(out.read_text())["layers"]}


def test_an_unused_import_of_a_missing_package_is_a_warning(tmp_path, package):
    knn_with(package, f"""\
        import numpy as np
        from {ABSENT} import true
        from numpy.lib.npyio import savez_compressed_gone


        class KNearestNeighbor(object):
            def train(self, X, y):
                self.X_train = np.asarray(X)
        """)
    status, layers = check_json(tmp_path, package / "cs231n" / "classifiers" / "linear_svm.py")
    assert status == 0
    assert layers and all(e["verdict"] == "warning" for e in layers.values()), layers
    for entry in layers.values():
        assert [w["kind"] for w in entry["warnings"]] == ["stray_import"]
        message = entry["warnings"][0]["message"]
        assert f"k_nearest_neighbor.py, line 2: from {ABSENT} import true: {ABSENT} is not installed" in message
        assert "line 3: from numpy.lib.npyio import savez_compressed_gone: numpy.lib.npyio has no " in message


def test_a_missing_package_the_code_uses_is_still_the_one_line_error(tmp_path, package, capsys):
    knn_with(package, f"""\
        from {ABSENT} import true


        class KNearestNeighbor(object):
            flag = true
        """)
    status = main(["check", str(package / "cs231n" / "classifiers" / "linear_svm.py"), "--examples", "3"])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert status == 2  # the file cannot be imported
    assert f"imports {ABSENT}, which is not installed here: pip install {ABSENT}" in out
    assert "stray_import" not in out


def test_a_buggy_classifier_beside_a_stray_import_still_fails(tmp_path, package):
    knn_with(package, f"import {ABSENT}\n")
    svm = package / "cs231n" / "classifiers" / "linear_svm.py"
    text = svm.read_text()
    assert text.count("dW = X.T.dot(counts) / num_train + 2 * reg * W") == 1
    svm.write_text(text.replace("dW = X.T.dot(counts) / num_train + 2 * reg * W", "dW = X.T.dot(counts) / num_train"))
    _, layers = check_json(tmp_path, svm)
    assert layers["svm_loss_vectorized"]["verdict"] == "FAILED"
    assert [w["kind"] for w in layers["svm_loss_vectorized"]["warnings"]] == ["stray_import"]


def replaced(source: str) -> tuple[bool, ast.Module]:
    tree = ast.parse(source)
    return replace_stray_imports(tree, "file.py", source), tree


@pytest.mark.parametrize("source", [
    "import numpy as np\n",  # installed
    f"from {ABSENT} import true\nx = true\n",  # used
    f"from {ABSENT} import true\ndef f():\n    return true\n",  # used in a function
    f"from {ABSENT} import true\n__all__ = ['true']\n",  # re-exported
    f"from .{ABSENT} import true\n",  # the student's own package: a missing file
    f"try:\n    import {ABSENT}\nexcept ImportError:\n    pass\n",  # already guarded
])
def test_only_unused_failing_module_level_imports_are_replaced(source):
    assert replaced(source)[0] is False


def test_a_replaced_import_binds_a_placeholder_that_says_what_failed():
    changed, tree = replaced(f"import os\nimport {ABSENT}.sub as gone, json\n")
    assert changed
    scope: dict[str, object] = {"__gradcheck_missing__": Missing}
    exec(compile(tree, "file.py", "exec"), scope)
    gone = scope["gone"]
    assert isinstance(gone, Missing) and isinstance(scope["json"], Missing)
    with pytest.raises(ImportError, match=f"import {ABSENT}.sub as gone, json failed here "
                                          f"\\({ABSENT} is not installed\\)"):
        _ = gone.anything
    with pytest.raises(ImportError):
        gone()


def test_course_requirements_are_a_note_the_rest_a_warning():
    warning, notes = stray_import_findings({
        "a/softmax.py, line 5": "from sqlalchemy import true: sqlalchemy is not installed",
        "a/svm.py, line 4": "from past.builtins import xrange: past is not installed",
        "a/knn.py, line 4": "from past.builtins import xrange: past is not installed",
    })
    assert warning is not None and warning.kind == "stray_import"
    assert "sqlalchemy" in warning.message and "past" not in warning.message
    assert notes == ["from past.builtins import xrange, in a/knn.py, a/svm.py, is unused and fails here "
                     "(past is not installed); checked without it (the course's requirements install it)"]
    assert stray_import_findings({}) == (None, [])


@pytest.mark.skipif(importlib.util.find_spec("past") is not None, reason="future is installed here")
def test_the_starter_codes_unused_past_import_is_a_note(tmp_path, package):
    knn_with(package, "from past.builtins import xrange\n")
    _, layers = check_json(tmp_path, package / "cs231n" / "classifiers" / "linear_svm.py")
    assert all(e["verdict"] == "passed" and not e["warnings"] for e in layers.values()), layers
    assert all(any("past.builtins" in n for n in e["notes"]) for e in layers.values())
