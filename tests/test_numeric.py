"""The numeric engine against known derivatives, and its probes."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck import numeric as num
from gradcheck.complex_safety import probe_complex_safety


class Counted:
    """An objective that counts its evaluations."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def __call__(self, values):
        self.calls += 1
        return self.fn(values)


def poly(values):
    (x,) = values
    return np.sum(0.5 * x**3 - 2.0 * x**2 + x)


def poly_grad(x):
    return 1.5 * x**2 - 4.0 * x + 1.0


def expsin(values):
    (x,) = values
    return np.sum(np.exp(x) * np.sin(x))


def expsin_grad(x):
    return np.exp(x) * (np.sin(x) + np.cos(x))


@pytest.fixture
def matmul_problem(rng):
    a = rng.standard_normal((4, 3))
    b = rng.standard_normal((3, 5))
    d = rng.standard_normal((4, 5))

    def f(values):
        return np.sum(d * (values[0] @ values[1]))

    return f, [a, b], [d @ b.T, a.T @ d]


def _rel(estimate, true):
    return np.max(np.abs(estimate - true)) / np.max(np.abs(true))


BOUNDS = {"complex": 1e-13, "central": 1e-8, "richardson": 1e-10, "forward": 1e-6}


@pytest.mark.parametrize("method", sorted(BOUNDS))
@pytest.mark.parametrize("fn,grad", [(poly, poly_grad), (expsin, expsin_grad)])
def test_coordinate_derivatives_match_known_gradients(method, fn, grad, rng):
    x = rng.uniform(-2, 2, size=(3, 4))
    noise = num.EPS * 50
    est = num.coordinate_derivatives(fn, [x], 0, np.arange(x.size), method, noise=noise)
    assert _rel(est.value, grad(x).ravel()) <= BOUNDS[method]


@pytest.mark.parametrize("method", sorted(BOUNDS))
def test_matrix_product_gradients(method, matmul_problem):
    f, base, grads = matmul_problem
    for i in range(2):
        est = num.coordinate_derivatives(f, base, i, np.arange(base[i].size), method)
        assert _rel(est.value, grads[i].ravel()) <= BOUNDS[method]


def test_richardson_error_bar_covers_the_true_error(rng):
    x = rng.uniform(-2, 2, size=20)
    est = num.coordinate_derivatives(expsin, [x], 0, np.arange(20), "richardson",
                                     noise=num.EPS * 100)
    true = expsin_grad(x)
    assert np.all(np.abs(est.value - true) <= est.error + 1e-14 * np.abs(true))
    assert np.all(est.error < 1e-7 * np.max(np.abs(true)))


@pytest.mark.parametrize("method,per_coordinate,extra", [
    ("complex", 1, 0), ("central", 2, 0), ("richardson", 4, 0), ("forward", 1, 1)])
def test_evaluation_counts_and_base_untouched(method, per_coordinate, extra, rng):
    x = rng.standard_normal((2, 3))
    before = x.copy()
    f = Counted(poly)
    num.coordinate_derivatives(f, [x], 0, np.arange(6), method)
    assert f.calls == 6 * per_coordinate + extra
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("method,bound", [
    ("complex", 1e-13), ("central", 1e-8), ("richardson", 1e-10), ("forward", 1e-6)])
def test_directional_derivative(method, bound, matmul_problem, rng):
    f, base, grads = matmul_problem
    direction = [rng.standard_normal(b.shape) for b in base]
    true = sum(float(np.sum(g * d)) for g, d in zip(grads, direction))
    value, _ = num.directional_derivative(f, base, direction, method)
    assert abs(value - true) <= bound * max(1.0, abs(true))


def test_directional_derivative_with_a_fixed_input(matmul_problem, rng):
    f, base, grads = matmul_problem
    d = rng.standard_normal(base[1].shape)
    value, _ = num.directional_derivative(f, base, [None, d], "complex")
    assert value == pytest.approx(float(np.sum(grads[1] * d)), rel=1e-13)


def test_unknown_method_is_rejected(rng):
    with pytest.raises(ValueError, match="method='secant'"):
        num.coordinate_derivatives(poly, [rng.standard_normal(3)], 0, np.arange(3), "secant")


def _probe(f, x, rng):
    return probe_complex_safety(f, [x], [rng.standard_normal(x.shape)],
                                    noise=num.EPS * 10, noise_rel=num.EPS)


def test_probe_accepts_complex_safe_code(rng):
    probe = _probe(expsin, rng.standard_normal(8), rng)
    assert probe.complex_safe and probe.reason == ""


def _float_buffer(values):
    out = np.zeros(values[0].shape)
    out[...] = values[0] ** 2
    return np.sum(out)


def _rejects_complex(values):
    if np.iscomplexobj(values[0]):
        raise TypeError("complex input not supported")
    return np.sum(values[0] ** 2)


@pytest.mark.parametrize("fn,reason", [
    (lambda v: np.sum(np.abs(v[0]) ** 3), "real outputs"),
    (lambda v: np.sum(np.real(v[0]) ** 2 + v[0]), "disagree"),
    (_float_buffer, "ComplexWarning"),
    (_rejects_complex, "raised TypeError"),
    (lambda v: np.sum(v[0].real ** 2), "real outputs"),
])
def test_probe_rejects_code_that_drops_imaginary_parts(fn, reason, rng):
    probe = _probe(fn, rng.uniform(0.5, 2.0, size=6), rng)
    assert not probe.complex_safe
    assert reason in probe.reason


def test_noise_of_float64_code_is_round_off(rng):
    x = rng.standard_normal(50)
    noise = num.measure_noise(expsin, [x], [np.ones(50)])
    assert noise < 1e-13 * np.sum(np.abs(np.exp(x) * np.sin(x)))


def test_noise_of_float32_internals_is_seen(rng):
    x = rng.standard_normal(50)

    def f32(values):
        y = values[0].astype(np.float32)
        return float(np.sum(np.exp(y) * np.sin(y)))

    noise = num.measure_noise(f32, [x], [np.ones(50)])
    assert noise > 1e-9 * np.sum(np.abs(np.exp(x) * np.sin(x)))


def test_noise_measurement_ignores_a_kink_at_the_base_point():
    x = np.array([0.0, 1.0, -1.0, 0.0])

    def relu_sum(values):
        return np.sum(np.maximum(values[0], 0) * np.array([1.0, 2.0, 3.0, 4.0]))

    assert num.measure_noise(relu_sum, [x], [np.ones(4)]) < 1e-12


def test_one_sided_slopes_at_a_kink():
    x = np.array([0.0, 2.0])

    def relu_sum(values):
        return np.sum(np.where(np.real(values[0]) > 0, values[0], 0) * 3.0)

    left, right, _ = num.one_sided_slopes(relu_sum, [x], 0, np.arange(2))
    np.testing.assert_allclose(left, [0.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(right, [3.0, 3.0], atol=1e-6)


def _refusing_affine_relu(x, w):
    if np.iscomplexobj(x) or np.iscomplexobj(w):  # as a compiled extension without complex types
        raise TypeError("No matching signature found")
    a = x @ w
    return np.maximum(a, 0), (x, w, a)


def _affine_relu_backward(dout, cache):
    x, w, a = cache
    da = dout * (a > 0)
    return da @ w.T, x.T @ da


@pytest.mark.parametrize("mode", ["full", "sample"])
def test_kinks_a_few_probe_steps_away_are_not_read_as_round_off(mode):
    """Without the complex step, the round-off probe once compared tiny symmetric differences
    with a Richardson slope taken at larger steps, across kinks 1e-4 away: the kink was read as
    float32 round-off, steps widened over the kinks, and a right layer FAILED (a student's
    ThreeLayerConvNet with the course's compiled im2col, in the course corpus)."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    a = x @ w
    x[:, 0] += (np.sign(a[:, 0]) * 1e-4 - a[:, 0]) / w[0, 0]  # three pre-activations at +-1e-4
    assert np.sort(np.abs(x @ w).ravel())[2] < 2e-4
    report = gradcheck.check_layer(_refusing_affine_relu, _affine_relu_backward, x, w, mode=mode)
    assert report.passed, report
    assert not any("round-off" in note for note in report.notes), report.notes
    assert report.method == "central"  # no complex step: the path where the probe misread

    def wrong(dout, cache):  # and a wrong dw on the same layer is still caught
        dx, dw = _affine_relu_backward(dout, cache)
        return dx, dw * (1 + 1e-4)
    assert not gradcheck.check_layer(_refusing_affine_relu, wrong, x, w, mode=mode).passed
