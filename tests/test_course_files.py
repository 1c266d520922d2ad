"""Assignment 1's classifiers, the course's models and a student's package directory,
through ``gradcheck check`` (issue 11): right code passes, each kind of bug fails."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil

import numpy as np
import pytest

from gradcheck.candidate import check_candidate
from gradcheck.cli import main
from gradcheck.models import check_model_config
from gradcheck.packages import find_files, missing_dependency
from gradcheck.specs import get_spec

ASSIGNMENT = pathlib.Path(__file__).resolve().parent / "fixtures" / "assignment"
CLASSIFIERS = ASSIGNMENT / "cs231n" / "classifiers"


@pytest.fixture
def package(tmp_path):
    """A copy of the student-style assignment folder, safe to edit."""
    shutil.copytree(ASSIGNMENT, tmp_path / "assignment")
    return tmp_path / "assignment"


def edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def run_json(tmp_path, *paths):
    out = tmp_path / "out.json"
    status = main(["check", *map(str, paths), "--json", str(out), "--examples", "5", "--quiet"])
    return status, {(e.get("file", ""), e["layer"]): e for e in json.loads(out.read_text())["layers"]}


def svm_naive(reg_loss, reg_grad):
    def svm_loss_naive(W, X, y, reg):
        scores = X @ W
        margins = scores - scores[np.arange(len(y)), y][:, None] + 1
        margins[np.arange(len(y)), y] = 0
        active = (margins > 0).astype(float)
        active[np.arange(len(y)), y] = -active.sum(axis=1)
        loss = np.maximum(margins, 0).sum() / len(y) + reg_loss * reg * np.sum(W * W)
        return loss, X.T @ active / len(y) + reg_grad * reg * W
    return svm_loss_naive


@pytest.mark.parametrize(("reg_loss", "reg_grad", "passes"), [
    (1.0, 2.0, True), (0.5, 1.0, True), (1.0, 1.0, False), (0.0, 0.0, False), (1.0, 0.0, False)])
def test_classifier_regularisation_conventions(reg_loss, reg_grad, passes):
    outcome = check_candidate(get_spec("svm_loss_naive"), svm_naive(reg_loss, reg_grad), examples=10)
    assert outcome.passed is passes
    assert not outcome.warnings  # the 0.5 convention only rescales reg: a note, no warning
    if passes and reg_loss == 0.5:
        assert any("0.5 * reg * sum(W**2)" in note and "no hazard" in note for note in outcome.notes)


def test_classifier_cases_cover_reg_zero_and_positive():
    from gradcheck.determinism import sample_cases

    regs = {case.args[3] for case in sample_cases(get_spec("softmax_loss_vectorized"), 0, np.float64, 20)}
    assert 0.0 in regs and any(r > 0 for r in regs)
    # a run of a few examples (--examples 1 to 4) sees reg > 0 too: a regularisation gradient
    # left out fails there (the simplest case once had reg = 0, and --examples 4 missed it)
    for n in (1, 2, 3, 4):
        assert any(case.args[3] > 0 for case in sample_cases(get_spec("svm_loss_vectorized"), 0, np.float64, n))


def test_classifier_file_reports_each_function_and_their_agreement(tmp_path, package):
    svm = package / "cs231n" / "classifiers" / "linear_svm.py"
    status, layers = run_json(tmp_path, svm)
    assert status == 0
    assert {layer for _, layer in layers} == {
        "svm_loss_naive", "svm_loss_vectorized", "svm_loss_naive vs svm_loss_vectorized"}
    assert layers[(str(svm), "svm_loss_naive")]["gradients"] == {"dW": "ok"}
    assert layers[(str(svm), "svm_loss_naive vs svm_loss_vectorized")]["kind"] == "agreement"
    # dW of the vectorized version not divided by N: it fails, and so does the agreement
    edit(svm, "dW = X.T.dot(counts) / num_train", "dW = X.T.dot(counts)")
    status, layers = run_json(tmp_path, svm)
    assert status == 1
    assert layers[(str(svm), "svm_loss_naive")]["verdict"] == "passed"
    assert layers[(str(svm), "svm_loss_vectorized")]["gradients"] == {"dW": "FAILED"}
    agreement = layers[(str(svm), "svm_loss_naive vs svm_loss_vectorized")]
    assert agreement["gradients"] == {"dW": "FAILED"} and "dW of svm_loss_naive" in agreement["forward_message"]


def test_models_in_every_configuration_pass(tmp_path, package):
    classifiers = package / "cs231n" / "classifiers"
    status, layers = run_json(tmp_path, classifiers / "fc_net.py", classifiers / "neural_net.py",
                              classifiers / "rnn.py")
    assert status == 0
    names = {layer for _, layer in layers}
    assert {"TwoLayerNet", "FullyConnectedNet(plain)", "FullyConnectedNet(batchnorm)",
            "FullyConnectedNet(layernorm)", "FullyConnectedNet(dropout)",
            "FullyConnectedNet(batchnorm, dropout)", "CaptioningRNN(rnn)", "CaptioningRNN(lstm)"} <= names
    assert all(entry["kind"] == "model" for entry in layers.values())
    assert len([key for key in layers if key[1] == "TwoLayerNet"]) == 2  # both forms


def test_model_bugs_fail_gradient_and_loss(package):
    import importlib.util

    fc = package / "cs231n" / "classifiers" / "neural_net.py"
    edit(fc, "grads['b1'] = np.sum(dhidden, axis=0)", "grads['b1'] = 2 * np.sum(dhidden, axis=0)")
    spec = importlib.util.spec_from_file_location("student_net", fc)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outcome = check_model_config(module, "TwoLayerNet", "")
    assert outcome.gradients["b1"] == "FAILED" and outcome.gradients["W1"] == "ok"
    # regularisation left out of the loss and of its gradient: consistent, so only the
    # loss against the reference model shows it
    edit(fc, "grads['b1'] = 2 * np.sum", "grads['b1'] = np.sum")
    edit(fc, "loss += reg * (np.sum(W1 * W1) + np.sum(W2 * W2))", "")
    edit(fc, "hidden.T.dot(dscores) + 2 * reg * W2", "hidden.T.dot(dscores)")
    edit(fc, "X.T.dot(dhidden) + 2 * reg * W1", "X.T.dot(dhidden)")
    spec.loader.exec_module(module)
    outcome = check_model_config(module, "TwoLayerNet", "")
    assert outcome.forward == "FAILED" and "reference layers" in outcome.forward_message
    assert all(v == "ok" for v in outcome.gradients.values())


def test_model_that_cannot_be_built_fails_with_the_reason(tmp_path):
    path = tmp_path / "fc_net.py"
    path.write_text("class FullyConnectedNet:\n    def __init__(self, hidden_dims, mystery):\n"
                    "        self.params = {}\n")
    status, layers = run_json(tmp_path, path)
    assert status == 1
    entry = layers[("", "FullyConnectedNet(plain)")] if ("", "FullyConnectedNet(plain)") in layers \
        else next(iter(layers.values()))
    assert entry["verdict"] == "FAILED" and "requires mystery" in entry["forward_message"]


def test_directory_finds_known_files_and_imports_them_as_a_package(tmp_path, package, capsys):
    files = [str(pathlib.Path(f).relative_to(package)) for f in find_files(str(package))]
    assert "cs231n/layers.py" in files and "cs231n/classifiers/fc_net.py" in files
    assert "cs231n/__init__.py" not in files and "cs231n/classifiers/__init__.py" not in files
    status, layers = run_json(tmp_path, package)
    assert status == 1  # the unbuilt im2col_cython extension: three ERROR rows
    errors = {layer for (_, layer), e in layers.items() if e["verdict"] == "ERROR"}
    assert errors == {"conv", "conv_relu", "ThreeLayerConvNet"}
    assert all("im2col_cython" in layers[key]["error"] for key in layers if key[1] in errors)
    failed = [key for key, e in layers.items() if e["verdict"] == "FAILED"]
    assert not failed
    assert layers[(str(package / "cs231n" / "layer_utils.py"), "affine_relu")]["verdict"] == "passed"
    capsys.readouterr()
    main(["check", str(package), "--examples", "3"])
    table = capsys.readouterr().out
    assert table.splitlines()[2].split()[:2] == ["file", "layer"]
    assert "classifiers/fc_net.py" in table


def test_missing_third_party_package_is_one_line_in_a_directory(tmp_path, package, capsys):
    # past (package future) is what real folders import, but the field extra installs it:
    # a package of the same kind that no extra installs
    if importlib.util.find_spec("cv2") is not None:
        pytest.skip("cv2 is installed here")
    knn = package / "cs231n" / "classifiers" / "k_nearest_neighbor.py"
    knn.write_text("import cv2\n\nREAD = cv2.imread  # used: an import the code needs\n")
    (package / "cs231n" / "classifiers" / "__init__.py").write_text(
        "from cs231n.classifiers.k_nearest_neighbor import *\n")
    status = main(["check", str(package / "cs231n" / "classifiers"), "--examples", "3"])
    out = capsys.readouterr().out
    assert status == 1
    assert "imports cv2, which is not installed here: pip install opencv-python" in out
    assert "Traceback" not in out


def test_missing_dependency_lines():
    assert "pip install future" in missing_dependency("No module named 'past'")
    assert "pip install matplotlib" in missing_dependency("No module named 'matplotlib.pyplot'")
    assert missing_dependency("No module named 'cupy'") == (
        "your code imports cupy, which is not installed here: pip install cupy-cuda12x (or cupy-cuda11x, "
        "for the CUDA installed: CuPy needs an NVIDIA GPU with CUDA; see "
        "https://docs.cupy.dev/en/stable/install.html)")
    assert "pip install 'gradcheck[arrays]'" in missing_dependency("No module named 'array_api_strict'")
    assert "im2col_cython" in missing_dependency("No module named 'cs231n.im2col_cython'")
    # fast_layers.py imports these from the extension inside a try: a NameError when unbuilt
    assert "im2col_cython" in missing_dependency("backward raised NameError: name 'col2im_6d_cython' is not defined")
    assert missing_dependency("NameError: name 'col2im' is not defined") is None
    assert missing_dependency("No module named 'cs231n.layers'") is None  # the student's own file
    assert missing_dependency("ValueError: shapes do not align") is None


def test_empty_directory_is_a_usage_error(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert "no file gradcheck knows in it" in capsys.readouterr().err


def test_a_classifier_folder_without_init_imports_inside_its_package(tmp_path):
    """Some course years ship cs231n/classifiers/ without __init__.py (a namespace package
    in Python 3): its files' relative imports used to fail ("no known parent package")."""
    package = tmp_path / "cs231n"
    (package / "classifiers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def scale(x):\n    return 2.0 * x\n")
    (package / "classifiers" / "twice.py").write_text(
        "from ..helpers import scale\n\n\n"
        "def relu_forward(x):\n    return scale(x) * (x > 0) / 2.0, x\n\n\n"
        "def relu_backward(dout, cache):\n    return dout * (cache > 0)\n")
    status, layers = run_json(tmp_path, package / "classifiers" / "twice.py")
    assert status == 0, layers
    assert {layer for _, layer in layers} == {"relu"}


def test_a_cs231n_folder_without_init_whose_classifiers_import_it_absolutely(package):
    # found on real 2016 folders: the notebook runs from the assignment folder, where cs231n/
    # (no __init__.py) is a namespace package the classifiers import absolutely
    (package / "cs231n" / "__init__.py").unlink()
    (package / "cs231n" / "classifiers" / "__init__.py").write_text(
        "from cs231n.classifiers.linear_svm import *\n")
    assert main(["check", str(package / "cs231n" / "classifiers" / "linear_svm.py"), "--examples", "3",
                 "--quiet"]) == 0


@pytest.mark.parametrize("line", ["from cs231n.layers import *\n", "from ..layers import *\n"])
def test_a_cs231n_folder_without_any_init_imports_as_the_notebook_imports_it(package, line):
    # found on real 2018-2021 folders: no __init__.py in cs231n/ nor in classifiers/; the
    # notebook, run beside cs231n/, imports them as namespace packages
    for init in package.rglob("__init__.py"):
        init.unlink()
    fc_net = package / "cs231n" / "classifiers" / "fc_net.py"
    text = fc_net.read_text()
    imports = [row for row in text.splitlines(keepends=True) if "layers import" in row]
    assert imports, "the fixture's fc_net.py imports its layers"
    for row in imports:
        text = text.replace(row, line.replace("layers", row.split(" import")[0].rsplit(".", 1)[-1]))
    fc_net.write_text(text)
    assert main(["check", str(fc_net), "--examples", "2", "--quiet"]) == 0
