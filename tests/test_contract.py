"""Every breach of the backward contract has its own kind and message."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.kinds import ViolationKind
from reference_layers import affine_backward, affine_forward, softmax_loss


@pytest.fixture
def args(rng):
    return rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)


def kinds(report):
    return [v.kind for v in report.violations]


def only_message(report):
    (violation,) = report.violations
    return violation.message


def backward_returning(transform):
    def backward(dout, cache):
        return transform(*affine_backward(dout, cache))

    return backward


def test_wrong_number_of_gradients(args):
    report = gradcheck.check_layer(affine_forward, backward_returning(lambda dx, dw, db: (dx, dw)), *args)
    assert kinds(report) == [ViolationKind.GRADIENT_COUNT]
    assert only_message(report) == (
        "backward returned 2 gradients; expected 3, one for each differentiable input, "
        "in argument order: dx, dw, db"
    )
    assert all(g.status == "not compared" for g in report.gradients.values())


def test_backward_returning_none(args):
    report = gradcheck.check_layer(affine_forward, lambda dout, cache: None, *args)
    assert kinds(report) == [ViolationKind.GRADIENT_COUNT]
    assert "backward returned NoneType; expected 3 gradient(s) (dx, dw, db)" in only_message(report)


def test_none_for_one_gradient(args):
    report = gradcheck.check_layer(affine_forward, backward_returning(lambda dx, dw, db: (dx, None, db)), *args)
    assert kinds(report) == [ViolationKind.GRADIENT_TYPE]
    assert only_message(report) == "backward returned None for dw"
    assert report.gradients["x"].passed and report.gradients["w"].status == "not compared"


@pytest.mark.parametrize("transform,expected", [
    (lambda dx, dw, db: (dx, dw.T, db), "dw looks transposed: it has shape (2, 4) but w has shape (4, 2)"),
    (lambda dx, dw, db: (dx, dw, np.tile(db, (3, 1))), "db has extra leading axes (3,)"),
    (lambda dx, dw, db: (dx, dw, db[None, :]), "db has shape (1, 2) but b has (2,): only axes of size 1 differ"),
    (lambda dx, dw, db: (dx.ravel(), dw, db), "dx has the right number of entries but shape (12,) instead of (3, 4)"),
])
def test_wrong_shapes_are_explained(transform, expected, args):
    report = gradcheck.check_layer(affine_forward, backward_returning(transform), *args)
    assert kinds(report) == [ViolationKind.GRADIENT_SHAPE]
    assert only_message(report).startswith(expected)


def test_nan_in_a_gradient(args):
    def transform(dx, dw, db):
        dw = dw.copy()
        dw[1, 0] = np.nan
        return dx, dw, db

    report = gradcheck.check_layer(affine_forward, backward_returning(transform), *args)
    assert kinds(report) == [ViolationKind.GRADIENT_NONFINITE]
    assert only_message(report) == "dw contains NaN at 1 of 8 entries (first at index (1, 0))"


def test_writing_into_dout(args):
    def backward(dout, cache):
        grads = affine_backward(dout, cache)
        dout[0, 0] = 0.0
        return grads

    report = gradcheck.check_layer(affine_forward, backward, *args)
    assert kinds(report) == [ViolationKind.DOUT_MUTATED]
    assert only_message(report).startswith(
        "backward wrote into the upstream gradient dout: 1 of 6 entries changed, first at index (0, 0)")
    assert all(g.passed for g in report.gradients.values())


def test_forward_writing_into_its_input(args):
    def forward(x, w, b):
        out, cache = affine_forward(x, w, b)
        b += 1.0
        return out, cache

    report = gradcheck.check_layer(forward, affine_backward, *args)
    assert kinds(report) == [ViolationKind.INPUT_MUTATED]
    assert only_message(report).startswith("forward wrote into its input b: 2 of 2 entries changed")


def test_backward_writing_into_an_input_through_the_cache(args):
    def backward(dout, cache):
        grads = affine_backward(dout, cache)
        cache[0][:] = 0.0
        return grads

    report = gradcheck.check_layer(affine_forward, backward, *args)
    assert kinds(report) == [ViolationKind.INPUT_MUTATED]
    assert only_message(report).startswith("backward wrote into its input x")


def test_nondeterministic_forward(args):
    noise = np.random.default_rng(1)

    def forward(x, w, b):
        out, cache = affine_forward(x, w, b)
        return out * noise.uniform(0.5, 1.5, size=out.shape), cache

    report = gradcheck.check_layer(forward, affine_backward, *args)
    assert ViolationKind.NONDETERMINISTIC_FORWARD in kinds(report)
    assert "forward is not deterministic" in str(report)


def test_nondeterministic_backward(args):
    noise = np.random.default_rng(1)

    def backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx * noise.uniform(0.5, 1.5, size=dx.shape), dw, db

    report = gradcheck.check_layer(affine_forward, backward, *args)
    assert kinds(report) == [ViolationKind.NONDETERMINISTIC_BACKWARD]
    assert only_message(report).startswith("backward is not deterministic")


def test_backward_not_linear_in_dout(args):
    report = gradcheck.check_layer(affine_forward, backward_returning(lambda dx, dw, db: (dx, dw, db * np.abs(db))), *args)
    assert ViolationKind.NONLINEAR_BACKWARD in kinds(report)
    assert "backward is not linear in dout" in str(report)


def test_forward_raising_shows_the_users_traceback(args):
    def forward(x, w, b):
        raise NotImplementedError("TODO: implement the forward pass")

    report = gradcheck.check_layer(forward, affine_backward, *args)
    assert kinds(report) == [ViolationKind.FORWARD_ERROR]
    text = str(report)
    assert "forward raised NotImplementedError: TODO: implement the forward pass" in text
    assert "in forward" in report.error_detail
    assert "gradcheck/" not in report.error_detail


def test_backward_raising(args):
    def backward(dout, cache):
        return 1 / 0

    report = gradcheck.check_layer(affine_forward, backward, *args)
    assert kinds(report) == [ViolationKind.BACKWARD_ERROR]
    assert "ZeroDivisionError" in only_message(report)


def test_forward_returning_only_an_array(args):
    report = gradcheck.check_layer(lambda x, w, b: affine_forward(x, w, b)[0], affine_backward, *args)
    assert kinds(report) == [ViolationKind.FORWARD_RETURN]
    assert "must return (out, cache)" in only_message(report)
    assert "a single array of shape (3, 2)" in only_message(report)


def test_forward_returning_nan(args):
    def forward(x, w, b):
        out, cache = affine_forward(x, w, b)
        return np.full_like(out, np.nan), cache

    report = gradcheck.check_layer(forward, affine_backward, *args)
    assert kinds(report) == [ViolationKind.FORWARD_NONFINITE]


def test_forward_failing_at_a_perturbed_point(args):
    x0 = args[0].copy()

    def forward(x, w, b):
        if not np.array_equal(x, x0):
            raise ValueError("inputs changed")
        return affine_forward(x, w, b)

    report = gradcheck.check_layer(forward, affine_backward, *args)
    assert kinds(report) == [ViolationKind.FORWARD_ERROR]
    assert "at a perturbed input" in only_message(report)


def test_loss_returning_wrong_things(rng):
    x, y = rng.standard_normal((3, 4)), rng.integers(0, 4, 3)
    report = gradcheck.check_loss(lambda x, y: softmax_loss(x, y)[0], x, y)
    assert kinds(report) == [ViolationKind.LOSS_RETURN]
    report = gradcheck.check_loss(lambda x, y: (np.ones(2), x), x, y)
    assert kinds(report) == [ViolationKind.LOSS_RETURN]
    assert "single floating-point number" in only_message(report)


def test_loss_gradient_of_the_wrong_shape(rng):
    x, y = rng.standard_normal((3, 4)), rng.integers(0, 4, 3)
    report = gradcheck.check_loss(lambda x, y: (softmax_loss(x, y)[0], softmax_loss(x, y)[1].T), x, y)
    assert kinds(report) == [ViolationKind.GRADIENT_SHAPE]


def test_nondeterministic_loss(rng):
    noise = np.random.default_rng(3)
    x, y = rng.standard_normal((3, 4)), rng.integers(0, 4, 3)

    def loss_fn(x, y):
        loss, dx = softmax_loss(x, y)
        return loss + noise.uniform(), dx

    report = gradcheck.check_loss(loss_fn, x, y)
    assert ViolationKind.NONDETERMINISTIC_LOSS in kinds(report)


def test_linearity_check_is_exact_not_a_tolerance(args):
    # A backward that adds a tiny dout-independent term is not linear; doubling dout exposes
    # it even though the term is far below any relative tolerance.
    report = gradcheck.check_layer(affine_forward, backward_returning(lambda dx, dw, db: (dx, dw, db + 1e-9)), *args)
    assert ViolationKind.NONLINEAR_BACKWARD in kinds(report)


def test_float32_cancellation_in_backward_is_round_off_not_nonlinearity(rng):
    from reference_layers import batchnorm_backward, batchnorm_forward

    x = np.array([[2.0, -1.0, 5.0], [2.5, 3.0, 4.0]], dtype=np.float32)
    gamma, beta = np.array([1.5, -0.7, 1.1], np.float32), np.array([0.2, 0.1, -0.3], np.float32)
    report = gradcheck.check_layer(batchnorm_forward, batchnorm_backward, x, gamma, beta,
                                   {"mode": "train"})
    assert report.passed, str(report)


def test_an_integer_array_argument_is_named_when_backward_returns_its_gradient():
    def scale_forward(x, w):
        return x * w, (x, w)

    def scale_backward(dout, cache):
        x, w = cache
        return dout * w, dout * x  # a gradient for w too, but w is an integer array

    x = np.random.default_rng(0).normal(size=(3, 4))
    w = np.arange(12).reshape(3, 4)
    report = gradcheck.check_layer(scale_forward, scale_backward, x, w)
    assert not report.passed
    message = report.failures[0].message
    assert "backward returned 2 gradients; expected 1" in message
    assert "w is an integer array, which is not differentiated; cast it to float" in message
