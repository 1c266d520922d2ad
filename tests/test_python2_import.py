"""A package written for Python 2 is imported as its course ran it (issue 11): print
statements, tabs in indentation, ``except E, e`` and implicit relative imports of a sibling
anywhere in the package; right code passes with the ``python2`` warning, wrong code fails."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from gradcheck.cli import main
from gradcheck.python2_import import translate

ASSIGNMENT = Path(__file__).resolve().parent / "fixtures" / "assignment"


@pytest.mark.parametrize(("python2", "python3"), [
    ('print "loss", loss\n', 'print("loss", loss)\n'),
    ("print x,\n", 'print(x, end=" ")\n'),
    ("print >>sys.stderr, 'bad', x\n", "print('bad', x, file=sys.stderr)\n"),
    ("print\n", "print()\n"),
    ("if a: print a  # shown\n", "if a: print(a)  # shown\n"),
    ("print 'epoch %d / %d' % (\n      e, n)\n", "print('epoch %d / %d' % (\n      e, n))\n"),
    ("try:\n  f()\nexcept ValueError, e:\n  raise TypeError, 'no'\n",
     "try:\n  f()\nexcept ValueError as e:\n  raise TypeError('no')\n"),
    ("if a:\n        x = 1\n\ty = 2\n", "if a:\n        x = 1\n        y = 2\n"),
])
def test_translate_rewrites_python2_statements_only(python2, python3):
    translated, found = translate(python2)
    assert translated == python3
    assert found
    compile(translated, "<translated>", "exec")


@pytest.mark.parametrize("python3", ["print(x)\n", "print (a, b)\n", "x = 1\n",
                                     "from __future__ import print_function\nprint(x, end='')\n"])
def test_translate_leaves_python3_alone(python3):
    assert translate(python3) == (python3, [])


def python2_package(tmp_path: Path, *, buggy: bool) -> Path:
    """The fixture assignment folder turned into a 2016-style one: ``classifiers/__init__.py``
    imports its siblings by bare name, and two of them hold print statements and tabs."""
    folder = tmp_path / ("buggy" if buggy else "correct")
    shutil.copytree(ASSIGNMENT, folder)
    classifiers = folder / "cs231n" / "classifiers"
    (classifiers / "__init__.py").write_text("from k_nearest_neighbor import *\nfrom linear_svm import *\n")
    (classifiers / "k_nearest_neighbor.py").write_text(textwrap.dedent("""\
        import time


        class KNearestNeighbor(object):
            def train(self, X, y):
                start = time.time()
                self.X_train, self.y_train = X, y
                print "spend", time.time() - start, "seconds"
        """).replace("        print", "\tprint"))
    svm = classifiers / "linear_svm.py"
    text = svm.read_text().replace("    return loss, dW\n", "    print 'loss', loss\n    return loss, dW\n", 1)
    if buggy:  # dW of the vectorized form not divided by N
        text = text.replace("dW = X.T.dot(counts) / num_train", "dW = X.T.dot(counts)")
    svm.write_text(text)
    return svm


def check_json(tmp_path: Path, target: Path) -> tuple[int, dict[str, dict]]:
    out = tmp_path / "out.json"
    status = main(["check", str(target), "--json", str(out), "--examples", "4", "--quiet"])
    return status, {e["layer"]: e for e in json.loads(out.read_text())["layers"]}


def test_correct_python2_classifier_passes_with_the_python2_warning(tmp_path):
    status, layers = check_json(tmp_path, python2_package(tmp_path, buggy=False))
    assert status == 0, layers
    assert set(layers) == {"svm_loss_naive", "svm_loss_vectorized", "svm_loss_naive vs svm_loss_vectorized"}
    for entry in layers.values():
        assert entry["verdict"] == "warning", entry
        assert [w["kind"] for w in entry["warnings"]] == ["python2"]
        message = entry["warnings"][0]["message"]
        assert ("cs231n/classifiers/__init__.py: implicit relative import of k_nearest_neighbor, "
                "implicit relative import of linear_svm") in message
        assert "cs231n/classifiers/k_nearest_neighbor.py: tabs in indentation, print statement" in message
        assert "cs231n/classifiers/linear_svm.py: print statement" in message


def test_buggy_python2_classifier_fails(tmp_path):
    status, layers = check_json(tmp_path, python2_package(tmp_path, buggy=True))
    assert status == 1
    assert layers["svm_loss_naive"]["verdict"] == "warning"
    assert layers["svm_loss_vectorized"]["verdict"] == "FAILED"
    assert layers["svm_loss_vectorized"]["gradients"] == {"dW": "FAILED"}
    assert layers["svm_loss_naive vs svm_loss_vectorized"]["verdict"] == "FAILED"
    assert all(e["warnings"][0]["kind"] == "python2" for e in layers.values())


def test_code_that_is_not_python2_either_is_still_an_import_error(tmp_path, capsys):
    svm = python2_package(tmp_path, buggy=False)
    svm.write_text(svm.read_text().replace("def svm_loss_naive(W, X, y, reg):", "def svm_loss_naive(W, X, y, reg:"))
    assert main(["check", str(svm), "--examples", "2"]) == 2
    assert "SyntaxError" in capsys.readouterr().err


def test_a_bare_name_that_is_a_real_module_is_not_taken_for_a_sibling(tmp_path):
    # Python 3 imports a bare name absolutely first: a sibling named like an installed module
    # never shadows it (only a name nothing else provides falls back to the sibling)
    svm = python2_package(tmp_path, buggy=False)
    classifiers = svm.parent
    (classifiers / "numpy.py").write_text("raise ImportError('the sibling, not numpy')\n")
    (classifiers / "__init__.py").write_text("import numpy\nfrom linear_svm import *\n")
    status, layers = check_json(tmp_path, svm)
    assert status == 0
    assert "numpy" not in layers["svm_loss_naive"]["warnings"][0]["message"]


@pytest.mark.parametrize(("scale", "passes"), [("1.0", True), ("2.0", False)])
def test_dict_iteritems_runs_as_python2_ran_it(tmp_path, scale, passes):
    # the course's 2016 model skeletons: for k, v in self.params.iteritems()
    target = tmp_path / "py2_relu.py"
    target.write_text(textwrap.dedent(f"""\
        import numpy as np


        def relu_forward(x):
            scales = {{"x": {scale}}}
            for name, value in scales.iteritems():
                out = value * np.maximum(x, 0)
            return out, x


        def relu_backward(dout, cache):
            return dout * (cache > 0)
        """))
    status, layers = check_json(tmp_path, target)
    assert status == (0 if passes else 1)
    relu = layers["relu"]
    assert [w["kind"] for w in relu["warnings"]] == (["python2"] if passes else [])
    if passes:
        assert "iteritems" in relu["warnings"][0]["message"]
    else:  # the real bug (a forward twice too large), judged as its course ran it
        assert relu["forward"] == "FAILED"
        assert any("checked under Python 2 semantics" in n for n in relu["notes"])


@pytest.mark.parametrize("buggy", [False, True])
def test_a_model_whose_sibling_layers_divide_as_python2_did(tmp_path, buggy):
    """The 2016 ThreeLayerConvNets of the course corpus: the model's file is Python 3, but
    its layers, in the package's layers.py, compute a shape with ``/``. Under Python 2's
    integer division, applied to every module of the folder, the model runs as its course ran
    it: right passes with the python2 warning, wrong still fails."""
    folder = tmp_path / "assignment"
    shutil.copytree(ASSIGNMENT, folder)
    layers = folder / "cs231n" / "layers.py"
    text = layers.read_text()
    flat = "    out = x.reshape(x.shape[0], -1).dot(w) + b\n"
    assert text.count(flat) == 1
    layers.write_text(text.replace(flat, "    out = x.reshape(x.shape[0], x.size / x.shape[0]).dot(w) + b\n"))
    fc_net = folder / "cs231n" / "classifiers" / "fc_net.py"
    if buggy:  # the second layer's bias gradient lost
        net = fc_net.read_text()
        line = "        dh, grads['W2'], grads['b2'] = affine_backward(dscores, cache2)\n"
        assert net.count(line) == 1
        fc_net.write_text(net.replace(line, line + "        grads['b2'] = 0 * grads['b2']\n"))
    _, layers_found = check_json(tmp_path, fc_net)
    entry = layers_found["TwoLayerNet"]
    if buggy:  # the verdict on what the code does as its course ran it, said in a note
        assert entry["verdict"] == "FAILED" and entry["gradients"]["db2"] == "FAILED", entry
        assert any(n.startswith("checked under Python 2 semantics") for n in entry["notes"])
    else:
        assert entry["verdict"] == "warning", entry
        assert [w["kind"] for w in entry["warnings"]] == ["python2"], entry
