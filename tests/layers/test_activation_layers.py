"""Element-wise activations: forward against closed forms and torch, wrong backwards fail."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import gradcheck
from reference_layers import (
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)


@pytest.fixture
def x(rng):
    return rng.standard_normal((4, 6)) * 3


def test_forward_values(x):
    np.testing.assert_allclose(relu_forward(x)[0], np.maximum(x, 0))
    np.testing.assert_allclose(leaky_relu_forward(x, 0.1)[0], np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(sigmoid_forward(x)[0], expit(x), rtol=1e-13)
    np.testing.assert_allclose(tanh_forward(x)[0], np.tanh(x))


def test_sigmoid_is_stable_for_large_inputs():
    out, _ = sigmoid_forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype, x):
    for forward in (relu_forward, sigmoid_forward, tanh_forward, gelu_forward):
        assert forward(x.astype(dtype))[0].dtype == dtype
    assert leaky_relu_forward(x.astype(dtype), 0.2)[0].dtype == dtype


def test_leaky_relu_rejects_bad_alpha(x):
    with pytest.raises(ValueError, match="alpha must be in"):
        leaky_relu_forward(x, 1.5)


def test_against_torch(x):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    dout = np.random.default_rng(3).standard_normal(x.shape)
    for forward, backward, fn in (
        (gelu_forward, gelu_backward, lambda v: torch.nn.functional.gelu(v, approximate="tanh")),
        (sigmoid_forward, sigmoid_backward, torch.sigmoid),
        (tanh_forward, tanh_backward, torch.tanh),
    ):
        t.grad = None
        y = fn(t)
        y.backward(torch.tensor(dout))
        out, cache = forward(x)
        np.testing.assert_allclose(out, y.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(backward(dout, cache), t.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("forward,backward", [
    (sigmoid_forward, lambda dout, s: dout * s * (1 - s) * 2),  # stray factor
    (tanh_forward, lambda dout, t: dout * (1 - t)),  # 1 - t instead of 1 - t**2
    (gelu_forward, lambda dout, c: dout * 0.5 * (1 + c[1])),  # drops the x * tanh' term
    (leaky_relu_forward, lambda dout, c: np.where(c[0] > 0, dout, 0)),  # forgets alpha
])
def test_wrong_backwards_fail(forward, backward, x):
    args = (x, 0.1) if forward is leaky_relu_forward else (x,)
    report = gradcheck.check_layer(forward, backward, *args)
    assert report.failed_gradients == ["x"], str(report)


def test_correct_backwards_pass_with_complex_step(x):
    for forward, backward in ((sigmoid_forward, sigmoid_backward), (tanh_forward, tanh_backward),
                              (gelu_forward, gelu_backward)):
        report = gradcheck.check_layer(forward, backward, x)
        assert report.passed and report.method == "complex"
    report = gradcheck.check_layer(leaky_relu_forward, leaky_relu_backward, x, 0.1)
    assert report.passed and report.method == "complex"
