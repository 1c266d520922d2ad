"""Normalisation layers: loop oracles, running statistics, torch, and wrong backwards that must fail."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.specs import Case, get_spec
from gradcheck.specs.normalization import normalised_values, warm_up
from gradcheck.suite import check_case, check_spec
from reference_layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

NORM_SPECS = ["batchnorm", "batchnorm_alt", "spatial_batchnorm", "layernorm", "spatial_groupnorm"]
DTYPES = [np.float64, np.float32]


# -- oracles: plain loops over the entries that share a statistic, np.var on float64 --------


def _standardise(values: np.ndarray, eps: float) -> np.ndarray:
    v = values.astype(np.float64)
    return (v - v.mean()) / np.sqrt(v.var() + eps)


def batchnorm_oracle(x, gamma, beta, eps=1e-5):
    out = np.empty(x.shape)
    for j in range(x.shape[1]):
        out[:, j] = gamma[j] * _standardise(x[:, j], eps) + beta[j]
    return out


def batchnorm_test_oracle(x, gamma, beta, mean, var, eps=1e-5):
    out = np.empty(x.shape)
    for j in range(x.shape[1]):
        out[:, j] = gamma[j] * (x[:, j] - mean[j]) / np.sqrt(var[j] + eps) + beta[j]
    return out


def spatial_batchnorm_oracle(x, gamma, beta, eps=1e-5):
    out = np.empty(x.shape)
    for c in range(x.shape[1]):
        out[:, c] = gamma[c] * _standardise(x[:, c], eps) + beta[c]
    return out


def layernorm_oracle(x, gamma, beta, eps=1e-5):
    out = np.empty(x.shape)
    for i in range(x.shape[0]):
        out[i] = gamma * _standardise(x[i], eps) + beta
    return out


def groupnorm_oracle(x, gamma, beta, G, eps=1e-5):
    n, c, _, _ = x.shape
    size = c // G
    out = np.empty(x.shape)
    for i in range(n):
        for g in range(G):
            channels = slice(g * size, (g + 1) * size)
            out[i, channels] = _standardise(x[i, channels], eps)
    return gamma * out + beta


def _tol(dtype):
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == np.float64 else {"rtol": 1e-4, "atol": 1e-4}


def _eps(param):
    return param.get("eps", 1e-5)


# -- gradients over generated cases ------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", NORM_SPECS)
@given(data=st.data())
def test_reference_gradients_match(name, dtype, data):
    spec = get_spec(name)
    case = data.draw(spec.cases(dtype=dtype), label="case")
    report = check_case(spec, case)
    assert report.passed, f"{case.describe()}\n{report}"
    assert report.method == "complex", report.method_note


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@given(data=st.data())
def test_forward_matches_loop_oracles(dtype, data):
    tol = _tol(dtype)
    case = data.draw(get_spec("batchnorm").cases(dtype=dtype), label="batchnorm")
    x, gamma, beta, param = warm_up(case, batchnorm_forward).args  # test mode: running statistics
    out, _ = batchnorm_forward(x, gamma, beta, dict(param))
    assert out.dtype == dtype
    if param["mode"] == "train":
        expected = batchnorm_oracle(x, gamma, beta, _eps(param))
    else:
        expected = batchnorm_test_oracle(x, gamma, beta, param["running_mean"], param["running_var"], _eps(param))
    np.testing.assert_allclose(out, expected, **tol)

    case = data.draw(get_spec("spatial_batchnorm").cases(dtype=dtype), label="spatial")
    x, gamma, beta, param = warm_up(case, spatial_batchnorm_forward).args
    out, _ = spatial_batchnorm_forward(x, gamma, beta, dict(param))
    assert out.dtype == dtype
    if param["mode"] == "train":
        np.testing.assert_allclose(out, spatial_batchnorm_oracle(x, gamma, beta, _eps(param)), **tol)

    x, gamma, beta, param = data.draw(get_spec("layernorm").cases(dtype=dtype), label="layernorm").args
    out, _ = layernorm_forward(x, gamma, beta, param)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, layernorm_oracle(x, gamma, beta, _eps(param)), **tol)

    x, gamma, beta, G, param = data.draw(get_spec("spatial_groupnorm").cases(dtype=dtype), label="groupnorm").args
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, param)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, groupnorm_oracle(x, gamma, beta, G, _eps(param)), **tol)


@given(case=get_spec("batchnorm").cases())
def test_batchnorm_backward_and_alt_agree(case):
    x, gamma, beta, param = case.args
    out, cache = batchnorm_forward(x, gamma, beta, dict(param))
    dout = np.random.default_rng(0).standard_normal(out.shape)
    staged, closed = batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)
    # dx can be a near-cancellation (N = 2): compare against the size of the terms it sums.
    terms = np.max(np.abs(dout * gamma * cache[4]))
    for a, b in zip(staged, closed):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(terms, 1.0))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_gradients_keep_the_dtype(dtype, rng):
    x = normalised_values(rng, 3, 4).astype(dtype)
    gamma, beta = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
        assert all(g.dtype == dtype for g in backward(np.ones_like(x), cache))
    _, cache = layernorm_forward(x, gamma, beta, {})
    assert all(g.dtype == dtype for g in layernorm_backward(np.ones_like(x), cache))


# -- running statistics and modes -----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_train_mode_updates_running_statistics(dtype, rng):
    x = normalised_values(rng, 5, 3).astype(dtype)
    gamma, beta = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    mean0, var0 = rng.uniform(-1, 1, 3).astype(dtype), rng.uniform(1, 2, 3).astype(dtype)
    param = {"mode": "train", "momentum": 0.7, "running_mean": mean0, "running_var": var0}
    batchnorm_forward(x, gamma, beta, param)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(param["running_mean"], 0.7 * mean0 + 0.3 * x64.mean(axis=0), rtol=1e-6)
    # the BIASED batch variance (torch keeps the unbiased one)
    np.testing.assert_allclose(param["running_var"], 0.7 * var0 + 0.3 * x64.var(axis=0), rtol=1e-6)
    assert param["running_mean"].dtype == dtype and param["running_var"].dtype == dtype
    assert param["running_mean"] is not mean0  # a new array; the caller's is untouched

    fresh = {"mode": "train"}  # defaults: zeros, momentum 0.9
    batchnorm_forward(x, gamma, beta, fresh)
    np.testing.assert_allclose(fresh["running_mean"], 0.1 * x64.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(fresh["running_var"], 0.1 * x64.var(axis=0), rtol=1e-6)
    batchnorm_forward(x, gamma, beta, fresh)  # a second step compounds
    np.testing.assert_allclose(fresh["running_mean"], 0.19 * x64.mean(axis=0), rtol=1e-6)


def test_test_mode_uses_running_statistics(rng):
    x = normalised_values(rng, 4, 3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    mean, var = rng.uniform(-3, 3, 3), rng.uniform(0.5, 4, 3)
    param = {"mode": "test", "running_mean": mean, "running_var": var, "eps": 1e-3}
    out, cache = batchnorm_forward(x, gamma, beta, param)
    np.testing.assert_allclose(out, batchnorm_test_oracle(x, gamma, beta, mean, var, 1e-3), rtol=1e-13)
    assert param["running_mean"] is mean and param["running_var"] is var  # untouched
    # one sample is fine in test mode, and each sample is normalised on its own
    single, _ = batchnorm_forward(x[1:2], gamma, beta, dict(param))
    np.testing.assert_allclose(single, out[1:2], rtol=1e-13)
    # backward of the affine map
    dout = rng.standard_normal(x.shape)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    np.testing.assert_allclose(dx, dout * gamma / np.sqrt(var + 1e-3), rtol=1e-13)
    np.testing.assert_allclose(dbeta, dout.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(dgamma, (dout * (x - mean) / np.sqrt(var + 1e-3)).sum(axis=0), rtol=1e-13)


def test_spatial_batchnorm_test_mode_and_running_statistics(rng):
    x = normalised_values(rng, 2 * 3 * 2, 3).reshape(2, 3, 2, 3).transpose(0, 3, 1, 2)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    param = {"mode": "train", "momentum": 0.5}
    spatial_batchnorm_forward(x, gamma, beta, param)
    np.testing.assert_allclose(param["running_mean"], 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(param["running_var"], 0.5 * x.var(axis=(0, 2, 3)), rtol=1e-12)
    param["mode"] = "test"
    out, _ = spatial_batchnorm_forward(x, gamma, beta, param)
    mean, var = param["running_mean"], param["running_var"]
    expected = gamma[:, None, None] * (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(out, expected + beta[:, None, None], rtol=1e-12)


# -- explicit geometries that break naive code --------------------------------------------


def _bn_case(x, gamma, beta, param):
    return Case((x, gamma, beta, param), {"x": x.shape, "dtype": x.dtype.name})


@pytest.mark.parametrize("name", ["batchnorm", "batchnorm_alt"])
@pytest.mark.parametrize("n,d", [(2, 3), (2, 1), (5, 1), (3, 3)])
def test_batchnorm_small_batches_and_single_feature(name, n, d, rng):
    x = normalised_values(rng, n, d)
    gamma, beta = rng.uniform(0.5, 2, d), rng.standard_normal(d)
    report = check_case(get_spec(name), _bn_case(x, gamma, beta, {"mode": "train"}))
    assert report.passed and report.method == "complex", str(report)


def test_batchnorm_single_sample_is_degenerate(rng):
    """N = 1 in train mode: x - mean is 0, so out = beta and dx = 0 exactly."""
    x = rng.standard_normal((1, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_array_equal(out, beta[None])
    dout = rng.standard_normal((1, 4))
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, dgamma, dbeta = backward(dout, cache)
        np.testing.assert_array_equal(dx, 0)
        np.testing.assert_array_equal(dgamma, 0)
        np.testing.assert_array_equal(dbeta, dout[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_large_mean_offsets(dtype, rng):
    """Two-pass statistics: E[x^2] - E[x]^2 would lose every digit in float32 here."""
    spread = normalised_values(rng, 6, 3) - 5 * rng.uniform(-1, 1, 3)
    x = (1e4 + spread).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    out, _ = batchnorm_forward(x, gamma.astype(dtype), beta.astype(dtype), {"mode": "train"})
    np.testing.assert_allclose(out, batchnorm_oracle(x, gamma, beta), atol=1e-2 if dtype == np.float32 else 1e-9)
    out, _ = layernorm_forward(x.T.copy(), gamma[0] * np.ones(6, dtype), np.zeros(6, dtype), {})
    np.testing.assert_allclose(out, layernorm_oracle(x.T, gamma[0] * np.ones(6), np.zeros(6)),
                               atol=1e-2 if dtype == np.float32 else 1e-9)
    # a mean of 100 against a spread of ~1: still within float32's gradient tolerance
    x = (100 + spread).astype(dtype)
    report = check_case(get_spec("batchnorm"), _bn_case(x, gamma.astype(dtype), beta.astype(dtype), {"mode": "train"}))
    assert report.passed, str(report)


def test_batchnorm_float32_two_samples(rng):
    # dx is a cancellation of terms ~1e5 times larger: pure float32 round-off, which must
    # neither trip the linearity contract check nor fail the comparison.
    x = normalised_values(rng, 2, 3).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, 3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    report = check_case(get_spec("batchnorm"), _bn_case(x, gamma, beta, {"mode": "train"}))
    assert report.passed, str(report)


@pytest.mark.parametrize("name", ["batchnorm", "spatial_batchnorm"])
def test_test_mode_gradients(name, rng):
    if name == "batchnorm":
        x = normalised_values(rng, 3, 4)
    else:
        x = normalised_values(rng, 2 * 2 * 3, 4).reshape(2, 2, 3, 4).transpose(0, 3, 1, 2)
    gamma, beta = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    param = {"mode": "test", "running_mean": rng.uniform(-5, 5, 4), "running_var": rng.uniform(0.5, 9, 4)}
    report = check_case(get_spec(name), _bn_case(x, gamma, beta, param))
    assert report.passed and report.method == "complex", str(report)


@pytest.mark.parametrize("G", [1, 2, 6])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_groupnorm_one_group_and_one_channel_per_group(G, dtype, rng):
    n, c, h, w = 2, 6, 2, 2
    x = normalised_values(rng, c // G * h * w, n * G).T.reshape(n, c, h, w).astype(dtype)
    gamma = rng.uniform(0.5, 2, (1, c, 1, 1)).astype(dtype)
    beta = rng.standard_normal((1, c, 1, 1)).astype(dtype)
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {})
    np.testing.assert_allclose(out, groupnorm_oracle(x, gamma, beta, G), **_tol(dtype))
    if G == 1:  # one group: layer normalisation of each flattened sample, gamma per channel
        flat = layernorm_forward(x.reshape(n, -1).astype(np.float64), np.ones(c * h * w), np.zeros(c * h * w), {})[0]
        np.testing.assert_allclose(out, gamma * flat.reshape(x.shape) + beta, **_tol(dtype))
    case = Case((x, gamma, beta, G, {}), {"x": x.shape, "G": G})
    report = check_case(get_spec("spatial_groupnorm"), case)
    assert report.passed, str(report)


def test_layernorm_ignores_the_batch(rng):
    x = normalised_values(rng, 4, 3).T
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    out, _ = layernorm_forward(x, gamma, beta, {})
    single, _ = layernorm_forward(x[2:3], gamma, beta, {})
    np.testing.assert_allclose(single, out[2:3], rtol=1e-14)


# -- torch ---------------------------------------------------------------------------------


def _torch_grads(torch, fn, dout, *arrays):
    # contiguous copies: torch keeps numpy's strides, and its channels-last batch_norm kernel
    # is less accurate on near-cancelling gradients (N * H * W = 2)
    tensors = [torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in arrays]
    y = fn(*tensors)
    y.backward(torch.tensor(dout))
    return y.detach().numpy(), [t.grad.numpy() for t in tensors]


def _assert_matches_torch(ours, theirs, grads, dout_grads):
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)
    for mine, ref in zip(grads, dout_grads):
        np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-10)


@settings(max_examples=8)
@given(case=get_spec("batchnorm").cases())
def test_batchnorm_against_torch(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, gamma, beta, param = case.args
    param = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in param.items()}
    eps, training = _eps(param), param["mode"] == "train"
    momentum = param.get("momentum", 0.9)
    d = x.shape[1]
    mean0 = param.get("running_mean", np.zeros(d))
    var0 = param.get("running_var", np.zeros(d))
    t_mean, t_var = torch.tensor(mean0.copy()), torch.tensor(var0.copy())
    dout = np.random.default_rng(1).standard_normal(x.shape)
    theirs, their_grads = _torch_grads(
        torch, lambda a, g, b: F.batch_norm(a, t_mean, t_var, g, b, training, 1 - momentum, eps),
        dout, x, gamma, beta)
    out, cache = batchnorm_forward(x, gamma, beta, param)
    _assert_matches_torch(out, theirs, batchnorm_backward(dout, cache), their_grads)
    if training:
        n = x.shape[0]
        np.testing.assert_allclose(param["running_mean"], t_mean.numpy(), rtol=1e-12, atol=1e-12)
        # torch's running variance takes the unbiased batch variance: undo that factor
        batch_var_unbiased = (t_var.numpy() - momentum * var0) / (1 - momentum)
        np.testing.assert_allclose(param["running_var"],
                                   momentum * var0 + (1 - momentum) * batch_var_unbiased * (n - 1) / n,
                                   rtol=1e-10, atol=1e-12)


@settings(max_examples=8)
@given(case=get_spec("spatial_batchnorm").cases())
def test_spatial_batchnorm_against_torch(case):
    torch = pytest.importorskip("torch")
    x, gamma, beta, param = case.args
    param = dict(param)
    c = x.shape[1]
    t_mean = torch.tensor(param.get("running_mean", np.zeros(c)).copy())
    t_var = torch.tensor(param.get("running_var", np.zeros(c)).copy())
    training, eps = param["mode"] == "train", _eps(param)
    dout = np.random.default_rng(2).standard_normal(x.shape)
    theirs, their_grads = _torch_grads(
        torch, lambda a, g, b: torch.nn.functional.batch_norm(a, t_mean, t_var, g, b, training, 0.1, eps),
        dout, x, gamma, beta)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, param)
    _assert_matches_torch(out, theirs, spatial_batchnorm_backward(dout, cache), their_grads)


@settings(max_examples=8)
@given(case=get_spec("layernorm").cases())
def test_layernorm_against_torch(case):
    torch = pytest.importorskip("torch")
    x, gamma, beta, param = case.args
    dout = np.random.default_rng(3).standard_normal(x.shape)
    theirs, their_grads = _torch_grads(
        torch, lambda a, g, b: torch.nn.functional.layer_norm(a, (x.shape[1],), g, b, _eps(param)),
        dout, x, gamma, beta)
    out, cache = layernorm_forward(x, gamma, beta, param)
    _assert_matches_torch(out, theirs, layernorm_backward(dout, cache), their_grads)


@settings(max_examples=8)
@given(case=get_spec("spatial_groupnorm").cases())
def test_groupnorm_against_torch(case):
    torch = pytest.importorskip("torch")
    x, gamma, beta, G, param = case.args
    dout = np.random.default_rng(4).standard_normal(x.shape)
    # torch takes weight and bias of shape (C,); CS231n keeps them as (1, C, 1, 1)
    theirs, their_grads = _torch_grads(
        torch, lambda a, g, b: torch.nn.functional.group_norm(a, G, g, b, _eps(param)),
        dout, x, gamma.reshape(-1), beta.reshape(-1))
    out, cache = spatial_groupnorm_forward(x, gamma, beta, G, param)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert dgamma.shape == dbeta.shape == gamma.shape
    _assert_matches_torch(out, theirs, (dx, dgamma.reshape(-1), dbeta.reshape(-1)), their_grads)


# -- invalid geometry ---------------------------------------------------------------------


@pytest.mark.parametrize("call,message", [
    (lambda x: batchnorm_forward(x, np.ones(4), np.ones(4), {"mode": "train"}),
     r"x must have 2 dimensions \(N, D\); got shape \(3, 4, 2\)"),
    (lambda x: batchnorm_forward(x.reshape(3, 8), np.ones(4), np.ones(8), {"mode": "train"}),
     r"x \(3, 8\) has D=8, so gamma and beta need shape \(D,\) = \(8,\); got gamma \(4,\) and beta \(8,\)"),
    (lambda x: batchnorm_forward(x.reshape(6, 4), np.ones(4), np.ones(4), {"mode": "eval"}),
     r"mode must be 'train' or 'test' \(bn_param\['mode'\]\); got 'eval'"),
    (lambda x: batchnorm_forward(x.reshape(6, 4), np.ones(4), np.ones(4), {}),
     r"bn_param must contain 'mode'"),
    (lambda x: batchnorm_forward(x.reshape(6, 4), np.ones(4), np.ones(4),
                                 {"mode": "test", "running_mean": np.zeros(3)}),
     r"bn_param\['running_mean'\] must have shape \(D,\) = \(4,\); got \(3,\)"),
    (lambda x: batchnorm_forward(x.reshape(6, 4), np.ones(4), np.ones(4), {"mode": "train", "momentum": 2}),
     r"bn_param\['momentum'\] must be a number in \[0.0, 1.0\]; got 2"),
    (lambda x: spatial_batchnorm_forward(x.reshape(1, 4, 3, 2), np.ones((1, 4, 1, 1)), np.ones(4), {"mode": "train"}),
     r"x \(1, 4, 3, 2\) has C=4, so gamma and beta need shape \(C,\) = \(4,\); got gamma \(1, 4, 1, 1\)"),
    (lambda x: layernorm_forward(x.reshape(4, 6), np.ones(4), np.ones(4), {}),
     r"x \(4, 6\) has D=6, so gamma and beta need shape \(D,\) = \(6,\); got gamma \(4,\) and beta \(4,\)"),
    (lambda x: spatial_groupnorm_forward(x.reshape(1, 6, 2, 2), np.ones((1, 6, 1, 1)), np.ones((1, 6, 1, 1)), 4, {}),
     r"C=6 is not divisible by G=4"),
    (lambda x: spatial_groupnorm_forward(x.reshape(1, 6, 2, 2), np.ones(6), np.ones((1, 6, 1, 1)), 3, {}),
     r"gamma must have shape \(1, C, 1, 1\) = \(1, 6, 1, 1\) for x \(N=1, C=6, H=2, W=2\); got \(6,\)"),
    (lambda x: spatial_groupnorm_forward(x.reshape(1, 6, 2, 2), np.ones((1, 6, 1, 1)), np.ones((1, 6, 1, 1)), 0, {}),
     r"G must be a positive integer \(the number of groups\); got 0"),
    (lambda x: spatial_groupnorm_forward(x.reshape(6, 4), np.ones((1, 6, 1, 1)), np.ones((1, 6, 1, 1)), 3, {}),
     r"x must have 4 dimensions \(N, C, H, W\); got shape \(6, 4\)"),
])
def test_invalid_arguments_are_named(call, message, rng):
    with pytest.raises(ValueError, match=message):
        call(rng.standard_normal((3, 4, 2)))


# -- wrong backwards: the checker must fail them and name the gradient ----------------------


def _bn_bug(change):
    def backward(dout, cache):
        return change(dout, cache, *batchnorm_backward_alt(dout, cache))
    return backward


def _mu_var_constant(dout, cache, dx, dgamma, dbeta):
    _, _, _, _, inv_std, gamma, _ = cache
    return dout * gamma * inv_std, dgamma, dbeta  # mu and var treated as constants


@pytest.mark.parametrize("bug,failed", [
    (_bn_bug(_mu_var_constant), "x"),
    (_bn_bug(lambda dout, cache, dx, dg, db: (dx, dg, dout.mean(axis=0))), "beta"),  # dbeta averaged
    (_bn_bug(lambda dout, cache, dx, dg, db: (dx, -dg, db)), "gamma"),  # sign
])
def test_batchnorm_value_bugs_fail(bug, failed):
    result = check_spec(get_spec("batchnorm"), backward=bug, examples=10, shrink=False)
    assert not result.passed
    expected = {name: ("FAILED" if name == failed else "ok") for name in ("x", "gamma", "beta")}
    assert result.gradient_verdicts() == expected, str(result.failure)


def test_batchnorm_bug_in_train_mode_only_shrinks_to_the_smallest_batch():
    result = check_spec(get_spec("batchnorm"), backward=_bn_bug(_mu_var_constant), examples=20)
    assert not result.passed
    assert result.failure.failed_gradients == ["x"]
    assert result.failing_case.geometry["mode"] == "train"
    assert result.failing_case.geometry["x"][0] == 2


def test_batchnorm_dbeta_mean_is_diagnosed_as_a_batch_factor(rng):
    x = normalised_values(rng, 4, 3)
    case = _bn_case(x, rng.uniform(0.5, 2, 3), rng.standard_normal(3), {"mode": "train"})
    bug = _bn_bug(lambda dout, cache, dx, dg, db: (dx, dg, dout.mean(axis=0)))
    report = check_case(get_spec("batchnorm"), case, backward=bug)
    assert report.failed_gradients == ["beta"]
    assert "1/4" in report.gradients["beta"].diagnosis


def test_dgamma_not_summed_over_the_batch_is_a_shape_error(rng):
    x = normalised_values(rng, 4, 3)
    case = _bn_case(x, rng.uniform(0.5, 2, 3), rng.standard_normal(3), {"mode": "train"})
    bug = _bn_bug(lambda dout, cache, dx, dg, db: (dx, dout * cache[1], db))
    report = check_case(get_spec("batchnorm"), case, backward=bug)
    assert report.failed_gradients == ["gamma"]
    (violation,) = report.violations
    assert violation.kind == "gradient_shape" and violation.argument == "gamma"
    assert "(4, 3)" in violation.message and "summed" in violation.message


def test_dgamma_summed_over_the_wrong_axis_fails_even_when_shapes_agree(rng):
    # N = D = 3: the per-sample sum has gamma's shape (3,), so only the values can tell.
    x = normalised_values(rng, 3, 3)
    case = _bn_case(x, rng.uniform(0.5, 2, 3), rng.standard_normal(3), {"mode": "train"})
    bug = _bn_bug(lambda dout, cache, dx, dg, db: (dx, np.sum(dout * cache[1], axis=1), db))
    report = check_case(get_spec("batchnorm"), case, backward=bug)
    assert report.failed_gradients == ["gamma"], str(report)
    assert not report.violations


def test_spatial_batchnorm_statistics_over_n_only_fail(rng):
    """A student who reuses batchnorm on x.reshape(N, -1) gets per-pixel statistics."""
    def backward(dout, cache):
        _, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
        xhat = cache[1][1].reshape(dout.shape[0], dout.shape[2], dout.shape[3], -1).transpose(0, 3, 1, 2)
        inv_std = cache[1][4].reshape(-1)[None, :, None, None]
        dxhat = dout * cache[1][5][None, :, None, None]
        wrong = inv_std * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))
        return wrong, dgamma, dbeta

    result = check_spec(get_spec("spatial_batchnorm"), backward=backward, examples=10, shrink=False)
    assert result.gradient_verdicts() == {"x": "FAILED", "gamma": "ok", "beta": "ok"}


def test_layernorm_with_batch_axis_statistics_in_backward_fails():
    def backward(dout, cache):
        xhat, inv_std, gamma = cache
        dxhat = dout * gamma
        n = dout.shape[0]  # copied from batchnorm: means over axis 0
        dx = inv_std / n * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
        return dx, np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)

    result = check_spec(get_spec("layernorm"), backward=backward, examples=10, shrink=False)
    assert result.gradient_verdicts() == {"x": "FAILED", "gamma": "ok", "beta": "ok"}, str(result.failure)


def test_groupnorm_dgamma_of_shape_c_is_a_shape_error(rng):
    def backward(dout, cache):
        dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
        return dx, dgamma.reshape(-1), dbeta

    result = check_spec(get_spec("spatial_groupnorm"), backward=backward, examples=3, shrink=False)
    assert not result.passed
    assert result.failure.failed_gradients == ["gamma"]
    (violation,) = result.failure.violations
    assert violation.kind == "gradient_shape" and violation.argument == "gamma"
    assert "keepdims" in violation.message


def test_groupnorm_statistics_over_the_wrong_group_fail(rng):
    """Backward that forgets the groups (one statistic per sample, like G = 1)."""
    def backward(dout, cache):
        xhat, inv_std, gamma, G = cache
        n = dout.shape[0]
        dxhat = (dout * gamma).reshape(n, -1)
        flat = xhat.reshape(n, -1)
        dx = inv_std.reshape(n, G, -1).mean(axis=1) * (
            dxhat - dxhat.mean(axis=1, keepdims=True) - flat * (dxhat * flat).mean(axis=1, keepdims=True))
        return dx.reshape(dout.shape), *spatial_groupnorm_backward(dout, cache)[1:]

    x = normalised_values(np.random.default_rng(5), 2 * 2 * 2, 2 * 3).T.reshape(2, 6, 2, 2)
    gamma, beta = np.full((1, 6, 1, 1), 1.5), np.zeros((1, 6, 1, 1)) + 0.3
    report = check_case(get_spec("spatial_groupnorm"), Case((x, gamma, beta, 3, {}), {}), backward=backward)
    assert report.failed_gradients == ["x"], str(report)
