"""Layer objects, whole models and torch autograd Functions."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import gradcheck
from gradcheck.kinds import ViolationKind


class DictAffine:
    """params/grads dicts; accumulates gradients with += like many frameworks."""

    def __init__(self, rng, d=3, m=2, bug=None):
        self.params = {"W": rng.normal(size=(d, m)), "b": rng.normal(size=m)}
        self.grads = {}
        self.bug = bug

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads["W"] = self.grads.get("W", 0) + self.x.T @ dout
        db = dout.mean(axis=0) if self.bug == "db" else dout.sum(axis=0)
        self.grads["b"] = self.grads.get("b", 0) + db
        return dout @ self.params["W"].T


class AttrTanh:
    """W/dW attribute pair, dW accumulated with +=."""

    def __init__(self, rng):
        self.W = rng.normal(size=(3, 2))
        self.dW = None

    def forward(self, x):
        self.x = x
        self.y = np.tanh(x @ self.W)
        return self.y

    def backward(self, dout):
        g = dout * (1 - self.y**2)
        self.dW += self.x.T @ g
        return g @ self.W.T


class TwoLayerNet:
    """The CS231n model convention: params dict, loss(X, y) -> (loss, grads)."""

    def __init__(self, rng, reg=0.1, bug=None):
        self.params = {"W1": rng.normal(size=(4, 5)) * 0.5, "b1": rng.normal(size=5) * 0.1,
                       "W2": rng.normal(size=(5, 3)) * 0.5, "b2": np.zeros(3)}
        self.reg, self.bug = reg, bug

    def loss(self, X, y):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        h = np.maximum(0, X @ W1 + b1)
        s = h @ W2 + b2
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        n = len(X)
        loss = -np.log(p[np.arange(n), y]).mean() + 0.5 * self.reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        ds = p.copy()
        ds[np.arange(n), y] -= 1
        ds /= n
        grads = {"W2": h.T @ ds + self.reg * W2, "b2": ds.sum(axis=0)}
        dh = ds @ W2.T
        dh[h <= 0] = 0
        grads["W1"] = X.T @ dh + (0 if self.bug == "reg" else self.reg * W1)
        grads["b1"] = dh.sum(axis=0)
        if self.bug == "missing":
            del grads["b2"]
        return loss, grads


@pytest.fixture
def x(rng):
    return rng.normal(size=(4, 3))


def test_layer_object_with_dicts_and_accumulating_grads(rng, x):
    report = gradcheck.check_object(DictAffine(rng), x)
    assert report.passed, str(report)
    assert list(report.gradients) == ["x", "W", "b"]


def test_layer_object_bug_is_named(rng, x):
    report = gradcheck.check_object(DictAffine(rng, bug="db"), x)
    assert report.failed_gradients == ["b"]
    assert "1/4 of the true gradient" in report.gradients["b"].diagnosis


def test_layer_object_with_attribute_pairs(rng, x):
    layer = AttrTanh(rng)
    before = layer.W.copy()
    report = gradcheck.check_object(layer, x)
    assert report.passed and list(report.gradients) == ["x", "W"]
    np.testing.assert_array_equal(layer.W, before)


def test_layer_object_without_methods(x):
    with pytest.raises(TypeError, match="forward"):
        gradcheck.check_object(object(), x)


@pytest.fixture
def data(rng):
    return rng.normal(size=(6, 4)), rng.integers(0, 3, 6)


def test_model_passes_and_keeps_its_parameters(rng, data):
    model = TwoLayerNet(rng)
    before = {k: v.copy() for k, v in model.params.items()}
    report = gradcheck.check_model(model, *data)
    assert report.passed, str(report)
    assert list(report.gradients) == ["W1", "b1", "W2", "b2"]
    for k, v in before.items():
        np.testing.assert_array_equal(model.params[k], v)


def test_model_missing_regularisation_gradient(rng, data):
    report = gradcheck.check_model(TwoLayerNet(rng, bug="reg"), *data)
    assert report.failed_gradients == ["W1"]


def test_model_missing_gradient(rng, data):
    report = gradcheck.check_model(TwoLayerNet(rng, bug="missing"), *data)
    assert [v.message for v in report.violations] == ["model.loss returned no gradient for 'b2'"]


@pytest.mark.parametrize(("b1_shape", "db1", "verdict"), [
    ((1, 5), lambda g: g, "warning"),  # db (5,) for b (1, 5): the solver broadcasts it
    ((5,), lambda g: g.reshape(1, 5), "FAILED"),  # db (1, 5) for b (5,): b -= lr * db fails
    ((5,), lambda g: g[:4], "FAILED"),
])
def test_a_model_gradient_that_broadcasts_onto_its_parameter_is_a_warning(rng, data, b1_shape, db1, verdict):
    model = TwoLayerNet(rng)
    model.params["b1"] = model.params["b1"].reshape(b1_shape)
    plain = model.loss

    def loss(X, y):
        value, grads = plain(X, y)
        grads["b1"] = db1(grads["b1"].reshape(-1))
        return value, grads

    model.loss = loss
    report = gradcheck.check_model(model, *data)
    kinds = [v.kind for v in report.violations]
    if verdict == "warning":
        assert report.passed and kinds == [ViolationKind.BROADCAST_GRADIENT], str(report)
    else:
        assert not report.passed and ViolationKind.GRADIENT_SHAPE in kinds, str(report)


def test_model_sample_mode(rng, data):
    report = gradcheck.check_model(TwoLayerNet(rng, bug="reg"), *data, mode="sample", samples=3)
    assert report.failed_gradients == ["W1"]


def test_torch_function_adapter(rng):
    torch = pytest.importorskip("torch")

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return (x @ w) ** 2

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            y = 2 * (x @ w) * g
            return y @ w.T, x.T @ y

    class Wrong(Square):
        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            y = 2 * (x @ w) * g
            return y @ w.T, x.T @ y / 2

    x, w = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    report = gradcheck.check_torch(Square.apply, x, w)
    assert report.passed and list(report.gradients) == ["x", "w"]
    report = gradcheck.check_torch(Wrong.apply, x, w)
    assert report.failed_gradients == ["w"]


class _ObjectWith:
    """A W/dW layer object with one hazard or bug switched on."""

    def __init__(self, flaw: str) -> None:
        self.W = np.array([[1.5, -0.5], [0.25, 2.0], [0.5, 1.0]])
        self.dW = np.zeros_like(self.W)
        self.flaw = flaw
        self.rng = np.random.default_rng()

    def forward(self, x):
        self.x = x
        out = x @ self.W
        if self.flaw == "nan":
            out[0, 0] = np.nan
        if self.flaw == "random":
            out = out * self.rng.uniform(0.5, 1.5, size=out.shape)  # an unseeded random scale
        return out

    def backward(self, dout):
        if self.flaw == "nonlinear":
            dout = dout * np.abs(dout)
        self.dW += self.x.T @ dout
        return dout @ self.W.T


def _kinds(report):
    return {v.kind for v in report.violations} | {w.kind for w in report.warnings}


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_a_layer_object_is_held_to_the_contract_of_a_function_pair(mode: str) -> None:
    """NaN outputs, a backward not linear in dout and a random forward were caught for
    function pairs but not for layer objects."""
    x = np.random.default_rng(0).normal(size=(4, 3))
    nan = gradcheck.check_object(_ObjectWith("nan"), x, mode=mode)
    assert not nan.passed and ViolationKind.FORWARD_NONFINITE in _kinds(nan), str(nan)
    nonlinear = gradcheck.check_object(_ObjectWith("nonlinear"), x, mode=mode)
    assert not nonlinear.passed and ViolationKind.NONLINEAR_BACKWARD in _kinds(nonlinear), str(nonlinear)
    random = gradcheck.check_object(_ObjectWith("random"), x, mode=mode)
    assert not random.passed and ViolationKind.NONDETERMINISTIC_FORWARD in _kinds(random), str(random)
    fine = gradcheck.check_object(_ObjectWith(""), x, mode=mode)
    assert fine.passed and not _kinds(fine), str(fine)


def test_a_layer_object_that_writes_into_dout_gets_the_warning_a_pair_gets() -> None:
    class Writes(_ObjectWith):
        def backward(self, dout):
            dx = dout @ self.W.T
            self.dW += self.x.T @ dout
            dout *= 0.0
            return dx

    report = gradcheck.check_object(Writes(""), np.random.default_rng(0).normal(size=(4, 3)))
    assert report.passed and [w.kind for w in report.warnings] == [ViolationKind.DOUT_MUTATED], str(report)


def test_a_model_whose_loss_is_nan_is_stopped_with_that_reason() -> None:
    class NanNet(TwoLayerNet):
        def loss(self, X, y):
            _, grads = super().loss(X, y)
            return float("nan"), grads

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    report = gradcheck.check_model(NanNet(np.random.default_rng(1)), X, y)
    assert not report.passed and ViolationKind.FORWARD_NONFINITE in _kinds(report), str(report)
    assert "nan" in str(report).lower()


def test_check_torch_without_torch_suggests_a_plain_torch_install(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(ImportError, match="check_torch needs torch: pip install torch ") as info:
        gradcheck.check_torch(lambda x: x, rng.normal(size=3))
    assert "gradcheck[bench]" not in str(info.value)
