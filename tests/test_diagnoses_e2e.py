"""Each diagnosis is a tested claim: a buggy layer whose report names that cause."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
import reference_layers as ref


@pytest.fixture
def affine_args(rng):
    return rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)


@pytest.fixture
def conv_args(rng):
    return (rng.normal(size=(2, 2, 6, 6)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3),
            {"stride": 1, "pad": 1})


def diagnosis(report, name):
    assert report.failed_gradients == [name], str(report)
    result = report.gradients[name]
    if result.status == "not compared":
        return next(v.message for v in report.violations if v.argument == name)
    return result.diagnosis or ""


def affine_with(transform):
    def backward(dout, cache):
        return transform(*ref.affine_backward(dout, cache), dout=dout, cache=cache)

    return backward


CASES = {
    "transposed": (affine_with(lambda dx, dw, db, **_: (dx, dw.T, db)), "w", "looks transposed"),
    "broadcast not summed": (affine_with(lambda dx, dw, db, dout, **_: (dx, dw, dout)), "b",
                             "must be summed over them"),
    "keepdims": (affine_with(lambda dx, dw, db, **_: (dx, dw, db[None, :])), "b", "keepdims"),
    "flattened": (affine_with(lambda dx, dw, db, **_: (dx.ravel(), dw, db)), "x", "right number of entries"),
    "sign": (affine_with(lambda dx, dw, db, **_: (dx, -dw, db)), "w", "wrong sign"),
    "batch mean": (affine_with(lambda dx, dw, db, dout, **_: (dx, dw, dout.mean(axis=0))), "b",
                   "1/4 of the true gradient (N = 4"),
    "not averaged": (affine_with(lambda dx, dw, db, **_: (dx, dw, 4 * db)), "b", "4 times the true gradient"),
    "factor 2": (affine_with(lambda dx, dw, db, **_: (dx, 2 * dw, db)), "w", "factor of 2"),
    "all zero": (affine_with(lambda dx, dw, db, **_: (np.zeros_like(dx), dw, db)), "x", "all zeros"),
    "loop bound": (affine_with(lambda dx, dw, db, **_: (np.concatenate([dx[:-1], 0 * dx[-1:]]), dw, db)),
                   "x", "zero at every mismatched entry"),
    "one sample": (affine_with(lambda dx, dw, db, **_: (np.concatenate([2 * dx[:1], dx[1:]]), dw, db)),
                   "x", "only for batch element(s) 0 of 4"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_affine_diagnoses(name, affine_args):
    backward, gradient, expected = CASES[name]
    report = gradcheck.check_layer(ref.affine_forward, backward, *affine_args)
    assert expected in diagnosis(report, gradient)


def test_transposed_values_of_a_square_weight(rng):
    x, w, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)), rng.normal(size=4)
    report = gradcheck.check_layer(ref.affine_forward, affine_with(lambda dx, dw, db, **_: (dx, dw.T, db)), x, w, b)
    assert "transpose of the right gradient" in diagnosis(report, "w")


def test_relu_mask_from_dout(rng):
    x = (rng.permutation(12) - 5.5).reshape(3, 4) * 0.3
    report = gradcheck.check_layer(ref.relu_forward, lambda dout, c: dout * (dout > 0), x)
    assert "mask selects the wrong entries" in diagnosis(report, "x")


def conv_with(transform):
    def backward(dout, cache):
        return transform(*ref.conv_backward_naive(dout, cache))

    return backward


def test_padding_sliced_with_negative_index_at_pad_0(conv_args):
    x, w, b, _ = conv_args

    def backward(dout, cache):
        dx, dw, db = ref.conv_backward_naive(dout, cache)
        padded = np.pad(dx, ((0, 0), (0, 0), (0, 0), (0, 0)))
        return padded[:, :, 0:-0, 0:-0], dw, db

    report = gradcheck.check_layer(ref.conv_forward_naive, backward, x, w, b, {"stride": 1, "pad": 0})
    assert "[p:-p] gives nothing when p = 0" in diagnosis(report, "x")


def test_border_only(conv_args):
    def border(dx, dw, db):
        dx = dx.copy()
        dx[:, :, 0, :] *= 1.5
        dx[:, :, :, -1] *= 1.5
        return dx, dw, db

    report = gradcheck.check_layer(ref.conv_forward_naive, conv_with(border), *conv_args)
    assert "border rows/columns" in diagnosis(report, "x")


def test_stride_aligned_only(conv_args):
    def aligned(dx, dw, db):
        dx = dx.copy()
        dx[:, :, ::2, ::2] *= 1.5
        return dx, dw, db

    report = gradcheck.check_layer(ref.conv_forward_naive, conv_with(aligned), *conv_args)
    assert "every 2nd row/column" in diagnosis(report, "x")


def test_forward_not_complex_safe_is_said(rng):
    def forward(x):
        out = np.zeros(x.shape)
        out[:] = np.tanh(x)
        return out, out

    report = gradcheck.check_layer(forward, lambda dout, y: dout * (1 - y * y), rng.normal(size=(3, 3)))
    assert report.passed
    assert "complex step not usable: forward discards imaginary parts" in str(report)
