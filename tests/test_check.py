"""check_layer / check_loss: right layers pass, wrong ones fail naming the gradient."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.kinds import ViolationKind
from reference_layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    svm_loss,
)


@pytest.fixture
def affine_args(rng):
    return rng.standard_normal((4, 3, 2)), rng.standard_normal((6, 5)), rng.standard_normal(5)


@pytest.fixture
def scores(rng):
    # A 0.3-spaced lattice keeps every hinge margin 0.1 away from its kink.
    return (rng.integers(-6, 7, size=(5, 4)) * 0.3), rng.integers(0, 4, size=5)


# -- correct layers ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "complex", "central", "richardson"])
@pytest.mark.parametrize("mode", ["full", "sample", "directional"])
def test_reference_affine_passes(method, mode, affine_args):
    report = gradcheck.check_layer(affine_forward, affine_backward, *affine_args,
                                   method=method, mode=mode)
    assert report.passed, str(report)
    assert list(report.gradients) == ["x", "w", "b"]


def test_complex_step_is_accurate_to_1e_13(affine_args):
    report = gradcheck.check_layer(affine_forward, affine_backward, *affine_args)
    assert report.method == "complex"
    assert max(g.max_rel_error for g in report.gradients.values()) <= 1e-13


def test_central_is_accurate_to_1e_8(affine_args):
    report = gradcheck.check_layer(affine_forward, affine_backward, *affine_args,
                                   method="central")
    assert report.method == "central"
    assert max(g.max_rel_error for g in report.gradients.values()) <= 1e-8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reference_layers_pass_in_both_precisions(dtype, affine_args, scores, rng):
    x, w, b = (a.astype(dtype) for a in affine_args)
    assert gradcheck.check_layer(affine_forward, affine_backward, x, w, b).passed
    relu_x = (rng.permutation(20) - 9.5).reshape(4, 5).astype(dtype) * 0.1
    assert gradcheck.check_layer(relu_forward, relu_backward, relu_x).passed
    s, y = scores
    assert gradcheck.check_loss(softmax_loss, s.astype(dtype), y).passed
    assert gradcheck.check_loss(svm_loss, s.astype(dtype), y).passed


def test_float32_tolerance_is_looser_and_reported(affine_args):
    x, w, b = (a.astype(np.float32) for a in affine_args)
    report = gradcheck.check_layer(affine_forward, affine_backward, x, w, b)
    assert 1e-5 < report.gradients["w"].rtol < 1e-3
    assert "rtol=" not in str(report)  # passing reports stay short


def f32_forward(x, w, b):
    out = x.astype(np.float32).reshape(len(x), -1) @ w.astype(np.float32) + b.astype(np.float32)
    return out.astype(np.float64), (x, w)


def f32_backward(dout, cache):
    x, w = cache
    d = dout.astype(np.float32)
    x2 = x.reshape(len(x), -1).astype(np.float32)
    dx = (d @ w.T.astype(np.float32)).reshape(x.shape)
    return dx.astype(np.float64), (x2.T @ d).astype(np.float64), d.sum(0).astype(np.float64)


def test_layer_computing_in_float32_internally_passes(affine_args):
    report = gradcheck.check_layer(f32_forward, f32_backward, *affine_args)
    assert report.passed, str(report)
    assert report.method == "central"
    assert "float32 internally" in str(report)


def test_float32_internals_do_not_hide_real_bugs(affine_args):
    def backward(dout, cache):
        dx, dw, db = f32_backward(dout, cache)
        return dx, dw, db / 2

    report = gradcheck.check_layer(f32_forward, backward, *affine_args)
    assert report.failed_gradients == ["b"]


def relu_abs_forward(x):
    out = np.zeros(x.shape)
    out[...] = (x + np.abs(x)) / 2
    return out, x


def test_forward_that_is_not_complex_safe_passes_with_a_fallback(rng):
    x = (rng.permutation(12) - 5.5).reshape(3, 4) * 0.2
    report = gradcheck.check_layer(relu_abs_forward, relu_backward, x)
    assert report.passed, str(report)
    assert report.method == "central"
    assert "complex step not usable" in str(report)


def test_explicit_complex_on_unsafe_forward_is_a_clear_error(rng):
    with pytest.raises(ValueError, match="method='complex' cannot be used"):
        gradcheck.check_layer(relu_abs_forward, relu_backward, rng.standard_normal(4) + 3,
                              method="complex")


def test_kinks_are_reported_not_failed():
    x = np.array([[0.0, 1.0, -2.0], [0.5, 0.0, -0.3]])

    def relu_backward_ge(dout, cache):
        return dout * (cache >= 0)

    report = gradcheck.check_layer(relu_forward, relu_backward_ge, x)
    assert report.passed, str(report)
    assert sorted(report.gradients["x"].kinks) == [(0, 0), (1, 1)]
    assert "sit on a kink" in str(report)


def test_wrong_gradient_at_a_kink_is_still_a_failure():
    x = np.array([[0.0, 1.0, -2.0]])

    def backward(dout, cache):
        return dout * (cache >= 0) * 3.0

    assert not gradcheck.check_layer(relu_forward, backward, x).passed


# -- wrong layers: each fails and names the gradient ---------------------------------------


def affine_db_averaged(dout, cache):
    dx, dw, _ = affine_backward(dout, cache)
    return dx, dw, dout.mean(axis=0)


def affine_dw_transposed_square(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw.T, db


def affine_dx_sign(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return -dx, dw, db


def relu_mask_on_dout(dout, cache):
    return np.where(dout > 0, dout, 0)


def softmax_without_minus_one(x, y):
    loss, _ = softmax_loss(x, y)
    shifted = x - x.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return loss, probs / len(x)


def svm_without_count(x, y):
    loss, dx = svm_loss(x, y)
    rows = np.arange(len(x))
    dx = dx.copy()
    dx[rows, y] = -1.0 / len(x)
    return loss, dx


def test_db_averaged_instead_of_summed(affine_args):
    report = gradcheck.check_layer(affine_forward, affine_db_averaged, *affine_args)
    assert report.failed_gradients == ["b"]
    assert "1/4 of the true gradient" in report.gradients["b"].diagnosis


def test_dw_transposed_values(rng):
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4)
    report = gradcheck.check_layer(affine_forward, affine_dw_transposed_square, x, w, b)
    assert report.failed_gradients == ["w"]
    assert "transpose" in report.gradients["w"].diagnosis


def test_dw_transposed_shape(affine_args):
    def backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw.T, db

    report = gradcheck.check_layer(affine_forward, backward, *affine_args)
    assert report.failed_gradients == ["w"]
    assert report.gradients["w"].status == "not compared"
    assert [v.kind for v in report.violations] == [ViolationKind.GRADIENT_SHAPE]


def test_sign_error(affine_args):
    report = gradcheck.check_layer(affine_forward, affine_dx_sign, *affine_args)
    assert report.failed_gradients == ["x"]
    assert "wrong sign" in report.gradients["x"].diagnosis


def test_relu_mask_on_dout(rng):
    x = (rng.permutation(20) - 9.5).reshape(4, 5) * 0.1
    report = gradcheck.check_layer(relu_forward, relu_mask_on_dout, x)
    assert report.failed_gradients == ["x"]
    assert "mask" in report.gradients["x"].diagnosis


@pytest.mark.parametrize("loss_fn", [softmax_without_minus_one, svm_without_count])
def test_loss_bugs(loss_fn, scores):
    report = gradcheck.check_loss(loss_fn, *scores)
    assert not report.passed
    assert report.failed_gradients == ["x"]


@pytest.mark.parametrize("mode", ["sample", "directional"])
def test_cheap_modes_catch_and_localise_bugs(mode, affine_args):
    report = gradcheck.check_layer(affine_forward, affine_db_averaged, *affine_args, mode=mode,
                                   samples=2)
    assert report.failed_gradients == ["b"]
    assert report.gradients["b"].escalated
    assert report.gradients["b"].n_mismatched == 5


@pytest.mark.parametrize("method", ["auto", "central"])
def test_single_entry_off_by_1e_6_is_caught(method, affine_args):
    def backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        dw = dw.copy()
        dw[2, 3] *= 1 + 1e-6
        return dx, dw, db

    report = gradcheck.check_layer(affine_forward, backward, *affine_args, method=method)
    assert report.failed_gradients == ["w"]
    assert report.gradients["w"].worst_index == (2, 3)
    assert report.gradients["w"].n_mismatched == 1


def test_svm_naive_style_loss_on_weights(rng):
    def svm_loss_naive(W, X, y, reg):
        dW = np.zeros(W.shape)
        loss = 0.0
        for i in range(X.shape[0]):
            s = X[i].dot(W)
            for j in range(W.shape[1]):
                margin = s[j] - s[y[i]] + 1
                if j != y[i] and margin > 0:
                    loss += margin
                    dW[:, j] += X[i]
                    dW[:, y[i]] -= X[i]
        loss = loss / X.shape[0] + reg * np.sum(W * W)
        return loss, dW / X.shape[0] + 2 * reg * W

    W, X, y = rng.standard_normal((5, 3)) * 0.1, rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    report = gradcheck.check_loss(svm_loss_naive, W, X, y, 0.1)
    assert report.passed, str(report)
    assert list(report.gradients) == ["W"]


# -- inputs and options -----------------------------------------------------------------


def test_user_arrays_are_never_modified(affine_args):
    def forward(x, w, b):
        out, cache = affine_forward(x, w, b)
        x *= 2
        return out, cache

    before = [a.copy() for a in affine_args]
    report = gradcheck.check_layer(forward, affine_backward, *affine_args)
    for a, b in zip(affine_args, before):
        np.testing.assert_array_equal(a, b)
    assert [v.kind for v in report.violations] == [ViolationKind.INPUT_MUTATED]


def test_parameter_dicts_are_copied_for_every_call(rng):
    def forward(x, param):
        param["calls"] = param.get("calls", 0) + 1
        return x * param["scale"], (param["scale"],)

    def backward(dout, cache):
        return dout * cache[0]

    param = {"scale": 3.0}
    assert gradcheck.check_layer(forward, backward, rng.standard_normal(5), param).passed
    assert param == {"scale": 3.0}


def test_wrt_restricts_the_check(affine_args):
    def backward(dout, cache):
        return affine_backward(dout, cache)[1]

    report = gradcheck.check_layer(affine_forward, backward, *affine_args, wrt=["w"])
    assert report.passed and list(report.gradients) == ["w"]


def test_evaluations_are_counted(affine_args):
    sizes = sum(a.size for a in affine_args)
    one_by_one = gradcheck.check_layer(affine_forward, affine_backward, *affine_args, grouped=False)
    assert sizes <= one_by_one.n_evaluations <= sizes + 25
    grouped = gradcheck.check_layer(affine_forward, affine_backward, *affine_args)
    assert grouped.n_evaluations < one_by_one.n_evaluations


@pytest.mark.parametrize("kwargs,message", [
    ({"method": "secant"}, "method='secant' is not one of"),
    ({"mode": "fast"}, "mode='fast' is not one of"),
    ({"seed": -1}, "seed=-1 must be a non-negative integer"),
    ({"rtol": -1e-3}, "rtol=-0.001 must be a finite number"),
    ({"atol": float("nan")}, "atol=nan must be a finite number"),
    ({"samples": 0}, "samples=0 must be a positive integer"),
    ({"wrt": ["q"]}, "wrt='q' is not an argument name"),
])
def test_bad_options_name_the_argument(kwargs, message, affine_args):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        gradcheck.check_layer(affine_forward, affine_backward, *affine_args, **kwargs)


def test_complex_inputs_are_rejected(rng):
    with pytest.raises(TypeError, match="argument 'x' is complex"):
        gradcheck.check_layer(relu_forward, relu_backward, rng.standard_normal(3) + 1j)


def test_no_differentiable_argument(rng):
    with pytest.raises(ValueError, match="no differentiable argument"):
        gradcheck.check_layer(relu_forward, relu_backward, np.arange(3))


def test_check_loss_needs_a_float_first_argument():
    with pytest.raises(TypeError, match="first argument"):
        gradcheck.check_loss(softmax_loss, np.arange(3), np.arange(3))


def test_assert_gradients(affine_args):
    assert gradcheck.assert_gradients(affine_forward, affine_backward, *affine_args).passed
    with pytest.raises(gradcheck.GradientMismatch) as info:
        gradcheck.assert_gradients(affine_forward, affine_db_averaged, *affine_args)
    assert isinstance(info.value, AssertionError)
    assert "db: Mismatched elements: 5 / 5" in str(info.value)
    assert info.value.report.failed_gradients == ["b"]


def test_assert_loss_gradients(scores):
    gradcheck.assert_loss_gradients(softmax_loss, *scores)
    with pytest.raises(gradcheck.GradientMismatch):
        gradcheck.assert_loss_gradients(svm_without_count, *scores)


def test_float32_inputs_are_differenced_at_float64_precision():
    # Column 0 varies on a scale of 0.02 around 2.08: steps sized for float32 (the user's
    # dtype) would be far too coarse; the numerics run in float64 and must use its steps.
    from reference_layers import batchnorm_backward_alt, batchnorm_forward

    x = np.array([[2.1009188, -1.7987423, 2.7753825], [2.0891619, -3.159963, 7.9724684],
                  [2.0444353, -3.0541775, 1.8158925]], np.float32)
    gamma = np.array([-1.1514125, 1.3110583, -0.53489107], np.float32)
    beta = np.array([0.7169491, -0.9482659, 0.6918118], np.float32)
    report = gradcheck.check_layer(batchnorm_forward, batchnorm_backward_alt, x, gamma, beta,
                                   {"mode": "train"}, seed=1130)
    assert report.passed, str(report)
    assert report.method == "complex"


def test_wrt_accepts_a_backward_returning_every_gradient(affine_args):
    report = gradcheck.check_layer(affine_forward, affine_backward, *affine_args, wrt=["b", "x"])
    assert report.passed and list(report.gradients) == ["b", "x"]


def _mixed_sign_seed():
    # A seed whose upstream gradient for 3 pooling windows is (+a, -b, .) with a - b < 0:
    # then routing a tie to the other element lies outside the two slopes of L.
    for seed in range(1000):
        d = np.random.default_rng(seed).standard_normal((1, 1, 1, 3))[0, 0, 0]
        if d[0] > 0 > d[1] and d[0] + d[1] < 0:
            return seed
    raise AssertionError("no seed found")


def test_ties_across_overlapping_windows_are_kinks_whichever_element_takes_them():
    from reference_layers import max_pool_backward_naive, max_pool_forward_naive

    x = np.array([[[[1.0, 1.0, 1.0, 0.0]]]])  # windows (0,1) and (1,2) tie, (2,3) does not
    param = {"pool_height": 1, "pool_width": 2, "stride": 1}

    def backward_last(dout, cache):  # the other convention: a tie goes to the LAST maximum
        x, p = cache
        flipped = max_pool_backward_naive(dout[..., ::-1].copy(), (x[..., ::-1].copy(), p))
        return flipped[..., ::-1].copy()

    def backward_wrong(dout, cache):
        return 3.0 * max_pool_backward_naive(dout, cache)

    seed = _mixed_sign_seed()
    for backward in (max_pool_backward_naive, backward_last):
        report = gradcheck.check_layer(max_pool_forward_naive, backward, x, param, seed=seed,
                                       method="central")
        assert report.passed, str(report)
    report = gradcheck.check_layer(max_pool_forward_naive, backward_last, x, param, seed=seed,
                                   method="central")
    assert report.gradients["x"].kinks
    wrong = gradcheck.check_layer(max_pool_forward_naive, backward_wrong, x, param, seed=seed,
                                  method="central")
    assert wrong.failed_gradients == ["x"]
