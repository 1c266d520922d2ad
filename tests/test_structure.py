"""Run-time structure: what it finds, that it is verified, and that the fast path it
enables finds exactly the bugs the one-coordinate-at-a-time path finds."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
import reference_layers as ref
from gradcheck import structure
from gradcheck.layer_adapter import layer_problem


def found(forward, backward, *args, which=0, complex_step=True, wrt=None):
    rng = np.random.default_rng(0)
    problem = layer_problem(forward, backward, args, wrt=wrt, rng=rng)
    s = structure.detect(problem.evaluate, problem.base, which, rng, complex_step=complex_step)
    return problem, s


@pytest.mark.parametrize("complex_step", [True, False])
def test_elementwise_layer_needs_one_class(complex_step, rng):
    _, s = found(ref.sigmoid_forward, ref.sigmoid_backward, rng.normal(size=(4, 5, 3)),
                 complex_step=complex_step)
    assert s is not None and s.n_classes == 1


def test_affine_input_classes_are_its_features(rng):
    x, w, b = rng.normal(size=(6, 5)), rng.normal(size=(5, 7)), rng.normal(size=7)
    _, s = found(ref.affine_forward, ref.affine_backward, x, w, b)
    assert s is not None and list(s.colours) == [0] and s.n_classes == 5
    _, s = found(ref.affine_forward, ref.affine_backward, x, w, b, which=1)
    assert s is not None and list(s.colours) == [1] and s.n_classes == 5
    small = found(ref.affine_forward, ref.affine_backward, x, w[:, :2], b[:2], which=2)[1]
    assert small is None  # 2 entries: probing would cost more than it saves


def test_batchnorm_samples_are_coupled_but_features_are_not(rng):
    x = rng.normal(size=(6, 5))
    _, s = found(ref.batchnorm_forward, ref.batchnorm_backward, x, rng.normal(size=5),
                 rng.normal(size=5), {"mode": "train"})
    assert s is not None and list(s.colours) == [1] and s.n_classes == 6


def test_convolution_is_local_in_space(rng):
    x, w, b = rng.normal(size=(2, 3, 10, 10)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    _, s = found(ref.conv_forward_naive, ref.conv_backward_naive, x, w, b, {"stride": 1, "pad": 1})
    assert s is not None and sorted(s.colours) == [0, 2, 3]
    assert s.n_classes == 3 * 3 * 3


def test_recurrence_over_time_is_not_mistaken_for_independence(rng):
    x, h0 = rng.normal(size=(2, 4, 3)) * 0.5, rng.normal(size=(2, 5)) * 0.5
    wx, wh, b = rng.normal(size=(3, 5)) * 0.4, rng.normal(size=(5, 5)) * 0.4, rng.normal(size=5) * 0.1
    _, s = found(ref.rnn_forward, ref.rnn_backward, x, h0, wx, wh, b)
    assert s is not None and list(s.colours) == [0]  # samples only; time steps are causal


def test_a_wrong_structure_is_caught_by_verification(rng):
    def forward(x):
        return np.cumsum(x, axis=1), None

    def backward(dout, cache):
        return np.cumsum(dout[:, ::-1], axis=1)[:, ::-1]

    x = rng.normal(size=(3, 8))
    problem = layer_problem(forward, backward, (x,), wrt=None, rng=rng)
    # Claims each column reaches only its own output column (true of an element-wise map,
    # false of a cumulative sum): grouping the even columns then changes odd outputs.
    claimed = structure.Structure(
        shape=(3, 8), reach={1: [[None, np.eye(8, dtype=bool)]]},
        colours={1: np.arange(8, dtype=np.intp) % 2}, probes=0)
    with pytest.raises(structure.StructureViolation):
        structure.estimate(problem.evaluate, problem.base, 0, claimed, problem.douts, "complex",
                           noise=0.0, noise_rel=1e-16)


def test_grouped_and_one_by_one_estimates_agree(rng):
    x, w, b = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    args = (x, w, b, {"stride": 2, "pad": 1})
    fast = gradcheck.check_layer(ref.conv_forward_naive, ref.conv_backward_naive, *args)
    slow = gradcheck.check_layer(ref.conv_forward_naive, ref.conv_backward_naive, *args, grouped=False)
    assert fast.passed and slow.passed
    assert fast.n_evaluations * 3 < slow.n_evaluations
    assert all("grouped" in g.checked for g in fast.gradients.values() if g.shape != (4,))
    for name in fast.gradients:
        assert fast.gradients[name].max_rel_error < 1e-13


def _stride_one(dout, cache):
    dx, dw, db = ref.conv_backward_naive(dout, cache)
    dx = dx.copy()
    dx[:, :, 1::2, :] = 0  # forgets the rows between stride-aligned ones
    return dx, dw, db


def _pool_assign(dout, cache):
    x, param = cache
    ph, pw, s = param["pool_height"], param["pool_width"], param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw].reshape(*x.shape[:2], -1)
            k = np.argmax(window, axis=2)
            r, c = np.unravel_index(k, (ph, pw))
            n, ch = np.indices(x.shape[:2])
            dx[n, ch, i * s + r, j * s + c] = dout[:, :, i, j]  # = instead of +=
    return dx


def _bn_constants(dout, cache):
    _, _, _, _, inv_std, gamma, _ = cache  # train-mode cache of the reference
    _, dgamma, dbeta = ref.batchnorm_backward(dout, cache)
    return dout * gamma * inv_std, dgamma, dbeta  # treats the batch mean and variance as constants


MUTANTS = {
    "conv stride": (ref.conv_forward_naive, _stride_one,
                    lambda r: (r.normal(size=(2, 2, 7, 7)), r.normal(size=(3, 2, 3, 3)), r.normal(size=3),
                               {"stride": 2, "pad": 1})),
    "max pool =": (ref.max_pool_forward_naive, _pool_assign,
                   lambda r: (r.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) * 0.1,
                              {"pool_height": 3, "pool_width": 3, "stride": 1})),
    "relu mask": (ref.relu_forward, lambda dout, x: dout * (dout > 0),
                  lambda r: ((r.permutation(40) - 19.5).reshape(4, 10) * 0.1,)),
    "affine db": (ref.affine_forward, lambda d, c: (*ref.affine_backward(d, c)[:2], d.mean(0)),
                  lambda r: (r.normal(size=(5, 4)), r.normal(size=(4, 3)), r.normal(size=3))),
    "batchnorm dx": (ref.batchnorm_forward, _bn_constants,
                     lambda r: (r.normal(size=(5, 4)), r.normal(size=4), r.normal(size=4), {"mode": "train"})),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_fast_path_finds_the_same_bugs_as_the_slow_path(name):
    forward, backward, make = MUTANTS[name]
    args = make(np.random.default_rng(3))
    fast = gradcheck.check_layer(forward, backward, *args)
    slow = gradcheck.check_layer(forward, backward, *args, grouped=False)
    assert fast.failed_gradients and fast.failed_gradients == slow.failed_gradients
    for g in fast.failed_gradients:
        a, b = fast.gradients[g], slow.gradients[g]
        assert a.n_mismatched == b.n_mismatched
        assert [m.index for m in a.mismatches] == [m.index for m in b.mismatches]


@pytest.mark.parametrize("forward,backward", [(ref.relu_forward, ref.relu_backward),
                                              (ref.gelu_forward, ref.gelu_backward)])
def test_elementwise_full_check_costs_the_same_at_any_size(forward, backward):
    counts = []
    for shape in [(4, 10), (16, 50), (32, 200)]:
        r = np.random.default_rng(1)
        x = (r.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2 + 0.5) * 0.01
        report = gradcheck.check_layer(forward, backward, x)
        assert report.passed
        counts.append(report.n_evaluations)
    assert counts[0] == counts[1] == counts[2]


def test_independent_samples_cost_about_size_over_n(rng):
    x, w, b = rng.normal(size=(16, 3, 8, 8)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    report = gradcheck.check_layer(ref.conv_forward_naive, ref.conv_backward_naive, x, w, b,
                                   {"stride": 1, "pad": 1}, wrt=["x"])
    assert report.passed
    assert report.n_evaluations < x.size / 16


def test_two_slices_are_never_mistaken_for_an_identity(rng):
    # C = 2 channels and N = 2 samples: every channel reaches every sample, so a probe of
    # "every slice" must never be what decides (it proved nothing, and once let this pass).
    args = (rng.normal(size=(2, 2, 7, 7)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3),
            {"stride": 2, "pad": 1})
    problem = layer_problem(ref.conv_forward_naive, ref.conv_backward_naive, args, wrt=None, rng=rng)
    for seed in range(40):
        s = structure.detect(problem.evaluate, problem.base, 0, np.random.default_rng(seed),
                             complex_step=True)
        assert s is not None and 1 not in s.colours
