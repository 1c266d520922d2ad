"""Inverted dropout: seeded masks, keep-probability convention, and wrong backwards that must fail."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck.kinds import ViolationKind
from gradcheck.specs import Case, get_spec
from gradcheck.specs.dropout import dropout_forward_check
from gradcheck.suite import check_case, check_spec
from reference_layers import dropout_backward, dropout_forward

DTYPES = [np.float64, np.float32]


def mask_oracle(shape, p, seed):
    """Keep where a uniform draw from default_rng(seed) is below p; kept units scaled by 1/p."""
    u = np.random.default_rng(seed).random(shape)
    mask = np.zeros(shape)
    for idx in np.ndindex(*shape):
        mask[idx] = 1 / p if u[idx] < p else 0.0
    return mask


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@given(data=st.data())
def test_reference_gradients_match(dtype, data):
    spec = get_spec("dropout")
    case = data.draw(spec.cases(dtype=dtype), label="case")
    report = check_case(spec, case)
    assert report.passed, f"{case.describe()}\n{report}"
    assert report.method == "complex", report.method_note


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@given(data=st.data())
def test_forward_and_backward_match_the_mask_oracle(dtype, data):
    x, param = data.draw(get_spec("dropout").cases(dtype=dtype), label="case").args
    out, cache = dropout_forward(x, param)
    again, _ = dropout_forward(x, param)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, again)  # the seed makes the mask repeat
    dout = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    dx = dropout_backward(dout, cache)
    assert dx.dtype == dtype
    if param["mode"] == "test":
        np.testing.assert_array_equal(out, x)
        assert out is not x
        np.testing.assert_array_equal(dx, dout)
    else:
        mask = mask_oracle(x.shape, param["p"], param["seed"])
        rtol = 1e-6 if dtype == np.float32 else 1e-15
        np.testing.assert_allclose(out, x * mask, rtol=rtol)
        np.testing.assert_allclose(dx, dout * mask, rtol=rtol)


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8])
def test_p_is_the_keep_probability(p):
    x = np.ones((200, 150))
    out, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 7})
    kept = out != 0
    assert abs(kept.mean() - p) < 0.01
    np.testing.assert_allclose(out[kept], 1 / p)  # inverted dropout: scaled at train time
    assert abs(out.mean() - 1) < 0.03  # so the expectation is the input


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_keep_everything(dtype, rng):
    x = rng.standard_normal((3, 5)).astype(dtype)
    out, cache = dropout_forward(x, {"p": 1.0, "mode": "train", "seed": 3})
    np.testing.assert_array_equal(out, x)
    dout = rng.standard_normal((3, 5)).astype(dtype)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)
    report = check_case(get_spec("dropout"), Case((x, {"p": 1.0, "mode": "train", "seed": 3}), {}))
    assert report.passed, str(report)


def test_without_a_seed_masks_differ_between_calls(rng):
    x = rng.standard_normal((40, 25))
    a, cache_a = dropout_forward(x, {"p": 0.5, "mode": "train"})
    b, _ = dropout_forward(x, {"p": 0.5, "mode": "train"})
    assert not np.array_equal(a != 0, b != 0)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(dropout_backward(dout, cache_a) != 0, a != 0)  # backward reuses the mask


def test_test_mode_is_the_identity_whatever_the_seed(rng):
    x = rng.standard_normal((4, 3, 2))
    for seed in (None, 0, 5):
        param = {"p": 0.3, "mode": "test"} | ({} if seed is None else {"seed": seed})
        out, cache = dropout_forward(x, param)
        np.testing.assert_array_equal(out, x)
        np.testing.assert_array_equal(dropout_backward(x[::-1], cache), x[::-1])


@pytest.mark.parametrize("param,message", [
    ({"p": 0, "mode": "train"}, r"p must be in \(0, 1\] \(the probability of keeping each unit\); got 0"),
    ({"p": 1.5, "mode": "train"}, r"p must be in \(0, 1\]"),
    ({"p": -0.2, "mode": "test"}, r"p must be in \(0, 1\]"),
    ({"p": 0.5, "mode": "eval"}, r"mode must be 'train' or 'test' \(dropout_param\['mode'\]\); got 'eval'"),
    ({"mode": "train"}, r"dropout_param must contain 'p' \(the keep probability\) and 'mode'"),
])
def test_invalid_parameters_are_named(param, message, rng):
    with pytest.raises(ValueError, match=message):
        dropout_forward(rng.standard_normal((2, 3)), param)


# -- judging a candidate's forward without knowing its random generator -------------------


@given(case=get_spec("dropout").cases())
def test_forward_check_accepts_the_reference_and_other_generators(case):
    x, param = case.args
    assert dropout_forward_check(case, [dropout_forward(x, param)[0]]) is None
    other = dict(param, seed=param["seed"] + 1)  # another mask, equally valid
    assert dropout_forward_check(case, [dropout_forward(x, other)[0]]) is None


def _check_forward(x, p, mode, out):
    return dropout_forward_check(Case((x, {"p": p, "mode": mode, "seed": 0}), {}), [out])


def test_forward_check_rejects_dropout_that_is_not_inverted(rng):
    x = rng.standard_normal((8, 10))
    keep = rng.random(x.shape) < 0.5
    message = _check_forward(x, 0.5, "train", x * keep)
    assert "must be 0 (dropped) or x / p (kept; the keep probability is p = 0.5)" in message
    assert "kept units must be scaled to x / p (inverted dropout)" in message
    assert "must return x unchanged" in _check_forward(x, 0.5, "test", x * 0.5)
    assert "a keep probability of 1" in _check_forward(x, 1.0, "train", x * keep)


def test_forward_check_rejects_p_used_as_the_drop_probability(rng):
    x = rng.standard_normal((8, 10))
    keep = rng.random(x.shape) >= 0.3  # drops with probability p
    message = _check_forward(x, 0.3, "train", x * keep / 0.7)
    assert "equals x divided by the DROP probability" in message
    # scaled right but kept with probability 1 - p: implausible on a large array
    x = rng.standard_normal((30, 30))
    keep = rng.random(x.shape) >= 0.3
    assert "implausible for a keep probability of p = 0.3" in _check_forward(x, 0.3, "train", x * keep / 0.3)
    assert "implausible" in _check_forward(x, 0.8, "train", x / 0.8)  # never drops
    assert _check_forward(x[:2, :5], 0.8, "train", x[:2, :5] / 0.8) is None  # 0.8^10: plausible


@pytest.mark.parametrize(("n_kept", "plausible"), [(1347, True), (1348, False), (1053, True), (1052, False)])
def test_kept_count_is_judged_by_the_exact_binomial_tail(n_kept, plausible):
    # Of 2400 units at p = 0.5, keeping 1348 has a tail probability of 8.2e-10 (below 1e-9),
    # 1347 of 1.06e-9: the exact tail draws the line where a bound on it would not.
    from scipy.stats import binom

    tail = binom.sf(n_kept - 1, 2400, 0.5) if n_kept > 1200 else binom.cdf(n_kept, 2400, 0.5)
    assert bool(tail >= 1e-9) is plausible
    x = np.arange(1.0, 2401.0).reshape(40, 60)
    keep = (np.arange(2400) < n_kept).reshape(40, 60)
    message = _check_forward(x, 0.5, "train", x * keep / 0.5)
    assert (message is None) is plausible, message
    if not plausible:
        assert message == f"train-mode dropout kept {n_kept} of 2400 units, implausible for a keep probability of p = 0.5"


# -- wrong backwards: the checker must fail them -----------------------------------------


def _redraws_the_mask(seed):
    # A fresh mask on every call, as from an unseeded generator, but the same fresh masks in
    # every run of the test: whether they agree with each other is then not left to chance.
    draws = np.random.default_rng(seed)

    def backward(dout, cache):
        param, _ = cache
        if param["mode"] == "test":
            return dout
        return dout * (draws.random(dout.shape) < param["p"]) / param["p"]

    return backward


def _forgets_the_scale(dout, cache):
    _, mask = cache
    return dout if mask is None else dout * (mask != 0)


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8])
def test_backward_that_redraws_the_mask_fails(p, rng):
    # check_case, not check_spec: hypothesis replays a failing case, and nondeterministic
    # code then raises FlakyFailure out of check_spec (reported as a core issue)
    x = rng.standard_normal((5, 6))
    case = Case((x, {"p": p, "mode": "train", "seed": 4}), {"p": p})
    report = check_case(get_spec("dropout"), case, backward=_redraws_the_mask(7))
    assert report.failed_gradients == ["x"], str(report)
    assert ViolationKind.NONDETERMINISTIC_BACKWARD in [v.kind for v in report.violations]


def test_backward_that_forgets_one_over_p_fails():
    result = check_spec(get_spec("dropout"), backward=_forgets_the_scale, examples=15)
    assert not result.passed
    assert result.gradient_verdicts() == {"x": "FAILED"}
    assert result.failing_case.geometry["p"] < 1 and result.failing_case.geometry["mode"] == "train"


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8])
def test_forgotten_scale_is_caught_at_every_keep_probability(p, rng):
    x = rng.standard_normal((4, 5))
    case = Case((x, {"p": p, "mode": "train", "seed": 11}), {"p": p})
    report = check_case(get_spec("dropout"), case, backward=_forgets_the_scale)
    assert report.failed_gradients == ["x"], str(report)
    assert not report.violations  # a value error, not a contract breach


def test_old_convention_in_test_mode_fails(rng):
    """Non-inverted dropout scales by p at test time; paired with an identity backward it is wrong."""
    def forward(x, dropout_param):
        out, cache = dropout_forward(x, dropout_param)
        return (out * dropout_param["p"] if dropout_param["mode"] == "test" else out), cache

    x = rng.standard_normal((3, 4))
    report = check_case(get_spec("dropout"), Case((x, {"p": 0.5, "mode": "test", "seed": 1}), {}),
                        forward=forward)
    assert report.failed_gradients == ["x"], str(report)


def test_forward_check_under_the_drop_convention_speaks_the_students_terms(rng):
    x = rng.standard_normal((30, 30))
    drop = rng.random(x.shape) < 0.3  # p = 0.3 drops a unit (the course up to 2017)
    case = Case((x, {"p": 0.3, "mode": "train", "seed": 0}), {})
    assert dropout_forward_check(case, [np.where(drop, 0, x / 0.7)], p_keeps=False) is None
    message = dropout_forward_check(case, [np.where(drop, 0, x / 0.3)], p_keeps=False)
    assert "x / (1 - p) (kept; the keep probability is 1 - p = 0.7 (p = 0.3 drops a unit))" in message
    assert dropout_forward_check(case, [np.where(drop, 0, x / 0.7)], p_keeps=True) is not None


def _float32_mask_output(x, p, seed=0):
    keep = np.random.default_rng(seed).random(x.shape) < p
    return x * (keep.astype(np.float32) / np.float32(p))  # the scale 1/p rounded to float32


def test_a_scale_rounded_to_float32_is_a_numpy_forward_bug_but_the_torch_course_idiom():
    """A float64 numpy dropout whose mask is float32 (as a real 2020 student's) is wrong by
    its labels; in torch a boolean mask divided by (1 - p) is float32 by default, and the
    EECS 498/598 spec admits it."""
    from gradcheck.specs.eecs498 import course_spec

    x = np.random.default_rng(3).standard_normal((40, 50)) + 2.0
    case = Case((x, {"p": 0.3, "mode": "train", "seed": 0}), {})
    numpy_spec = get_spec("dropout")
    rounded = [_float32_mask_output(x, 0.3)]
    exact = [x * ((np.random.default_rng(0).random(x.shape) < 0.3) / 0.3)]
    assert numpy_spec.forward_check(case, rounded) is not None
    assert numpy_spec.forward_check(case, exact) is None
    keeping = course_spec(numpy_spec).conventions[1].apply(numpy_spec)
    assert keeping.forward_check(case, rounded) is None
    assert keeping.forward_check(case, [x]) is not None  # nothing dropped: still caught
