"""Patterns of real students' classifiers and models (issue 11): a loss returned as an array
of shape (1, 1) is the right number to the course's tools (a warning, not a failure, while
a wrong value still fails), and normalisation's eps outside the square root fails a model
whose loss it changes by only 1e-6 on an ordinary batch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gradcheck.candidate import check_candidate
from gradcheck.cli import main
from gradcheck.forward import loss_shape_warning
from gradcheck.specs import get_spec

ASSIGNMENT = Path(__file__).resolve().parent / "fixtures" / "assignment"


def softmax_naive(shape, scale=1.0):
    """softmax_loss_naive whose loss has ``shape`` (one element), times ``scale``."""
    def softmax_loss_naive(W, X, y, reg):
        scores = X @ W
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.log(probs[np.arange(len(y)), y]).mean() * scale + reg * np.sum(W * W)
        dscores = probs.copy()
        dscores[np.arange(len(y)), y] -= 1
        return np.reshape(loss, shape), X.T @ dscores / len(y) + 2 * reg * W
    return softmax_loss_naive


@pytest.mark.parametrize("shape", [(1, 1), (1,)])
def test_a_right_loss_of_one_element_passes_with_the_loss_shape_warning(shape):
    outcome = check_candidate(get_spec("softmax_loss_naive"), softmax_naive(shape), examples=6)
    assert outcome.passed, outcome.forward_message
    assert [w["kind"] for w in outcome.warnings] == ["loss_shape"]
    assert f"shape {shape}" in outcome.warnings[0]["message"]


def test_a_scalar_loss_has_no_warning_and_a_wrong_one_element_loss_fails():
    right = check_candidate(get_spec("softmax_loss_naive"), softmax_naive(()), examples=6)
    assert right.passed and not right.warnings
    wrong = check_candidate(get_spec("softmax_loss_naive"), softmax_naive((1, 1), scale=2.0), examples=6)
    assert not wrong.passed and wrong.forward == "FAILED"
    assert "differs from the reference" in wrong.forward_message


def test_a_layer_loss_of_shape_1_1_is_a_warning_too():
    from reference_layers import softmax_loss

    def student_softmax_loss(x, y):
        loss, dx = softmax_loss(x, y)
        return np.array([[loss]]), dx

    student_softmax_loss.__name__ = "softmax_loss"
    outcome = check_candidate(get_spec("softmax_loss"), student_softmax_loss, examples=6)
    assert outcome.passed and [w["kind"] for w in outcome.warnings] == ["loss_shape"]


def test_the_loss_shape_warning_says_what_breaks_here():
    message = loss_shape_warning((1, 1)).message
    try:
        float(np.ones((1, 1)))
    except TypeError:
        assert f"raises in NumPy {np.__version__}" in message
    else:  # pragma: no cover - a NumPy that still converts it
        assert "deprecated since NumPy 1.25" in message


@pytest.fixture
def package(tmp_path):
    shutil.copytree(ASSIGNMENT, tmp_path / "assignment")
    return tmp_path / "assignment" / "cs231n"


def model_verdicts(tmp_path, fc_net):
    out = tmp_path / "out.json"
    main(["check", str(fc_net), "--json", str(out), "--quiet"])
    return {e["layer"]: e for e in json.loads(out.read_text())["layers"]}


def test_eps_outside_the_square_root_fails_the_model_on_a_batch_of_small_variance(tmp_path, package):
    layers = package / "layers.py"
    text = layers.read_text()
    assert text.count("        std = np.sqrt(var + eps)\n") == 1
    layers.write_text(text.replace('eps = bn_param.get("eps", 1e-5)', 'eps = bn_param.get("eps", 1e-12)')
                      .replace("        std = np.sqrt(var + eps)\n", "        std = np.sqrt(var) + eps\n"))
    verdicts = model_verdicts(tmp_path, package / "classifiers" / "fc_net.py")
    bn = verdicts["FullyConnectedNet(batchnorm)"]
    assert bn["verdict"] == "FAILED" and bn["forward"] == "FAILED"
    assert "scaled by 0.1" in bn["forward_message"] and "np.sqrt(var + eps)" in bn["forward_message"]
    assert all(v == "ok" for v in bn["gradients"].values())  # its backward is its forward's
    assert verdicts["FullyConnectedNet(layernorm)"]["verdict"] == "passed"


def test_the_course_model_passes_on_the_batch_of_small_variance(tmp_path, package):
    verdicts = model_verdicts(tmp_path, package / "classifiers" / "fc_net.py")
    for config in ("batchnorm", "layernorm"):
        assert verdicts[f"FullyConnectedNet({config})"]["verdict"] == "passed"
