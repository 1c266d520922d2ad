"""Word embedding, temporal affine, temporal softmax loss and scaled dot-product attention:
gradients, forward oracles, torch, invalid shapes, and realistic bugs the checker must catch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck import check_layer, check_loss
from gradcheck.specs import get_spec, layer_cases
from gradcheck.suite import check_case, check_spec

SPECS = ["word_embedding", "temporal_affine", "temporal_softmax_loss", "attention"]


# -- gradients over generated cases -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", SPECS)
@given(data=st.data())
def test_gradients_match_numeric(name, dtype, data):
    spec = get_spec(name)
    case = data.draw(layer_cases(name, dtype=dtype), label="case")
    report = check_case(spec, case)
    assert report.passed, f"{case.describe()}\n{report}"
    assert report.method == "complex", report.method_note
    assert list(report.gradients) == list(spec.wrt)


@pytest.mark.parametrize("general", [True, False])
@given(data=st.data())
def test_attention_cases_keep_every_mask_row_alive(general, data):
    case = data.draw(layer_cases("attention", general=general))
    query, _, value, *mask = case.args
    if not general:
        assert value.shape[-1] == query.shape[-1] and case.geometry["mask"] != "(N, S, T)"
    if mask:
        assert mask[0].dtype == bool and mask[0].any(axis=-1).all()


@given(case=layer_cases("temporal_softmax_loss"))
def test_softmax_cases_mask_some_steps_and_keep_one(case):
    x, y, mask = case.args
    assert mask.any()
    assert mask.size == 1 or not mask.all()
    assert y.min() >= 0 and y.max() < x.shape[2]


@given(case=layer_cases("word_embedding"))
def test_embedding_cases_index_the_vocabulary(case):
    x, W = case.args
    assert np.issubdtype(x.dtype, np.integer) and 0 <= x.min() and x.max() < W.shape[0]
    assert case.geometry["distinct_indices"] == np.unique(x).size


def test_float32_in_float32_out():
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal((2, 3, 4)).astype(np.float32)
    W = rng.standard_normal((5, 4)).astype(np.float32)
    out, cache = ref.word_embedding_forward(np.array([[0, 4, 0]]), W)
    assert out.dtype == ref.word_embedding_backward(out, cache).dtype == np.float32
    w, b = W[:4], W[0]
    out, cache = ref.temporal_affine_forward(x32, w, b)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in ref.temporal_affine_backward(out, cache))
    loss, dx = ref.temporal_softmax_loss(x32, np.zeros((2, 3), dtype=int), np.ones((2, 3), dtype=bool))
    assert loss.dtype == dx.dtype == np.float32
    out, cache = ref.attention_forward(x32, x32, x32[..., :2], np.tril(np.ones((3, 3), dtype=bool)))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in ref.attention_backward(out, cache))


# -- forward against independent loop oracles ----------------------------------------------


def softmax_row(scores):
    top = max(scores)
    e = [math.exp(s - top) for s in scores]
    return [v / sum(e) for v in e]


@given(case=layer_cases("word_embedding"))
def test_embedding_forward_and_backward_match_loops(case):
    x, W = case.args
    out, cache = ref.word_embedding_forward(x, W)
    n, t = x.shape
    expected = np.empty((n, t, W.shape[1]))
    for i in range(n):
        for j in range(t):
            expected[i, j] = W[x[i, j]]
    np.testing.assert_array_equal(out, expected)
    dout = np.random.default_rng(0).standard_normal(out.shape)
    dW = np.zeros_like(W)
    for i in range(n):
        for j in range(t):
            dW[x[i, j]] += dout[i, j]  # one row at a time: repeats accumulate
    np.testing.assert_allclose(ref.word_embedding_backward(dout, cache), dW, rtol=1e-13, atol=1e-15)


@given(case=layer_cases("temporal_affine"))
def test_temporal_affine_forward_matches_per_step_affine(case):
    x, w, b = case.args
    out, _ = ref.temporal_affine_forward(x, w, b)
    for t in range(x.shape[1]):
        step, _ = ref.affine_forward(x[:, t], w, b)
        np.testing.assert_allclose(out[:, t], step, rtol=1e-13, atol=1e-14)
    for i, j, m in np.ndindex(out.shape):
        assert math.isclose(out[i, j, m], b[m] + sum(x[i, j, k] * w[k, m] for k in range(x.shape[2])),
                            rel_tol=1e-12, abs_tol=1e-13)


@given(case=layer_cases("temporal_softmax_loss"))
def test_temporal_softmax_loss_matches_loops(case):
    x, y, mask = case.args
    n, t, v = x.shape
    loss, dx = ref.temporal_softmax_loss(x, y, mask)
    expected_loss, expected_dx = 0.0, np.zeros_like(x)
    for i in range(n):
        for j in range(t):
            if not mask[i, j]:
                continue
            p = softmax_row(list(x[i, j]))
            expected_loss -= math.log(p[y[i, j]]) / n
            for k in range(v):
                expected_dx[i, j, k] = (p[k] - (k == y[i, j])) / n
    assert math.isclose(loss, expected_loss, rel_tol=1e-12)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12, atol=1e-15)


def attention_oracle(query, key, value, mask=None):
    n, s, e = query.shape
    t, ev = value.shape[1:]
    out = np.zeros((n, s, ev))
    for i in range(n):
        for a in range(s):
            keys = [c for c in range(t) if mask is None or (mask[a, c] if mask.ndim == 2 else mask[i, a, c])]
            scores = [sum(query[i, a, k] * key[i, c, k] for k in range(e)) / math.sqrt(e) for c in keys]
            for weight, c in zip(softmax_row(scores), keys):
                out[i, a] += weight * value[i, c]
    return out


@given(case=layer_cases("attention"))
def test_attention_forward_matches_per_sample_loop(case):
    out, _ = ref.attention_forward(*case.args)
    np.testing.assert_allclose(out, attention_oracle(*case.args), rtol=1e-12, atol=1e-14)


def test_masked_keys_do_not_influence_the_output():
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 2))
    mask = np.array([[True, False, True, False, False]] * 3)
    out, _ = ref.attention_forward(q, k, v, mask)
    k2, v2 = k.copy(), v.copy()
    k2[:, [1, 3, 4]] += 100.0
    v2[:, [1, 3, 4]] = rng.standard_normal((2, 3, 2))
    np.testing.assert_array_equal(ref.attention_forward(q, k2, v2, mask)[0], out)
    _, _, dv = ref.attention_backward(np.ones_like(out), ref.attention_forward(q, k, v, mask)[1])
    assert np.all(dv[:, [1, 3, 4]] == 0)


def test_attention_survives_large_scores():
    q = np.full((1, 1, 1), 40.0)
    k = np.array([[[40.0], [-40.0], [39.0]]])
    v = np.array([[[1.0], [2.0], [3.0]]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out, _ = ref.attention_forward(q, k, v, np.array([[False, True, True]]))
    np.testing.assert_allclose(out, attention_oracle(q, k, v, np.array([[False, True, True]])), rtol=1e-12)


# -- explicit examples that break naive code -----------------------------------------------


@pytest.mark.parametrize("n, t", [(1, 1), (1, 4), (3, 1), (2, 3)])
def test_embedding_with_all_indices_equal(n, t):
    W = np.random.default_rng(n + t).standard_normal((3, 2))
    x = np.full((n, t), 2)
    report = check_layer(ref.word_embedding_forward, ref.word_embedding_backward, x, W, wrt=("W",))
    assert report.passed, str(report)
    out, cache = ref.word_embedding_forward(x, W)
    dW = ref.word_embedding_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dW, [[0, 0], [0, 0], [n * t, n * t]])


@pytest.mark.parametrize("n, t, v", [(1, 1, 2), (1, 4, 3), (3, 1, 5), (2, 3, 4)])
def test_temporal_layers_with_one_step_or_one_sample(n, t, v):
    rng = np.random.default_rng(n * 100 + t * 10 + v)
    x = rng.standard_normal((n, t, 3))
    report = check_layer(ref.temporal_affine_forward, ref.temporal_affine_backward,
                         x, rng.standard_normal((3, v)), rng.standard_normal(v))
    assert report.passed, str(report)
    scores, y = rng.standard_normal((n, t, v)), rng.integers(0, v, size=(n, t))
    assert check_loss(ref.temporal_softmax_loss, scores, y, np.ones((n, t), dtype=bool)).passed


def test_temporal_softmax_loss_with_a_single_kept_step():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, size=(3, 4))
    mask = np.zeros((3, 4), dtype=bool)
    mask[1, 2] = True
    loss, dx = ref.temporal_softmax_loss(x, y, mask)
    p = np.exp(x[1, 2]) / np.exp(x[1, 2]).sum()
    assert math.isclose(loss, -math.log(p[y[1, 2]]) / 3, rel_tol=1e-12)
    assert np.count_nonzero(np.any(dx != 0, axis=2)) == 1
    assert check_loss(ref.temporal_softmax_loss, x, y, mask).passed


def test_temporal_softmax_loss_ignores_targets_at_masked_steps(capsys):
    x = np.zeros((1, 2, 3))
    y = np.array([[1, -1]])  # a padding token outside [0, V) at a masked step is fine
    loss, dx = ref.temporal_softmax_loss(x, y, np.array([[True, False]]), verbose=True)
    assert math.isclose(loss, math.log(3))
    assert np.all(dx[0, 1] == 0)
    assert "dx (1, 2, 3)" in capsys.readouterr().out


@pytest.mark.parametrize("mask_shape", [None, "ST", "NST"])
@pytest.mark.parametrize("n, s, t, e, ev", [(1, 1, 1, 1, 1), (1, 2, 5, 3, 1), (3, 4, 1, 2, 2), (2, 3, 2, 4, 3)])
def test_attention_explicit_shapes(n, s, t, e, ev, mask_shape):
    rng = np.random.default_rng(n + 10 * s + 100 * t)
    args = [rng.standard_normal((n, s, e)), rng.standard_normal((n, t, e)), rng.standard_normal((n, t, ev))]
    if mask_shape is not None:
        shape = (s, t) if mask_shape == "ST" else (n, s, t)
        mask = np.zeros(shape, dtype=bool)
        mask[..., -1] = True  # a single True per row
        args.append(mask)
    report = check_layer(ref.attention_forward, ref.attention_backward, *args)
    assert report.passed, str(report)
    out, _ = ref.attention_forward(*args)
    assert out.shape == (n, s, ev)
    if mask_shape is not None:  # one key per query: the output is that key's value
        np.testing.assert_allclose(out, np.broadcast_to(args[2][:, -1:], out.shape), rtol=1e-14)


# -- torch as an independent reference (forward and gradients, float64) ---------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@settings(max_examples=10)
@given(case=layer_cases("word_embedding"), seed=st.integers(0, 2**16))
def test_embedding_matches_torch(torch, case, seed):
    x, W = case.args
    out, cache = ref.word_embedding_forward(x, W)
    Wt = torch.tensor(W, requires_grad=True)
    out_t = torch.nn.functional.embedding(torch.from_numpy(x), Wt)
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    (out_t * torch.from_numpy(dout)).sum().backward()
    np.testing.assert_allclose(ref.word_embedding_backward(dout, cache), Wt.grad.numpy(), rtol=1e-13, atol=1e-15)


@settings(max_examples=10)
@given(case=layer_cases("temporal_affine"), seed=st.integers(0, 2**16))
def test_temporal_affine_matches_torch(torch, case, seed):
    tensors = [torch.tensor(a, requires_grad=True) for a in case.args]
    xt, wt, bt = tensors
    out_t = torch.nn.functional.linear(xt, wt.T, bt)
    out, cache = ref.temporal_affine_forward(*case.args)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    (out_t * torch.from_numpy(dout)).sum().backward()
    for analytic, tensor in zip(ref.temporal_affine_backward(dout, cache), tensors):
        np.testing.assert_allclose(analytic, tensor.grad.numpy(), rtol=1e-12, atol=1e-14)


@settings(max_examples=10)
@given(case=layer_cases("temporal_softmax_loss"))
def test_temporal_softmax_loss_matches_torch(torch, case):
    x, y, mask = case.args
    n, t, v = x.shape
    xt = torch.tensor(x, requires_grad=True)
    per_step = torch.nn.functional.cross_entropy(xt.reshape(n * t, v), torch.from_numpy(y.reshape(-1)),
                                                 reduction="none")
    loss_t = (per_step * torch.from_numpy(mask.reshape(-1))).sum() / n
    loss_t.backward()
    loss, dx = ref.temporal_softmax_loss(x, y, mask)
    assert math.isclose(loss, loss_t.item(), rel_tol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


@settings(max_examples=15)
@given(case=layer_cases("attention"), seed=st.integers(0, 2**16))
def test_attention_matches_torch_sdpa(torch, case, seed):
    query, key, value, *mask = case.args
    tensors = [torch.tensor(a, requires_grad=True) for a in (query, key, value)]
    attn_mask = torch.from_numpy(mask[0]) if mask else None  # bool: True = takes part
    out_t = torch.nn.functional.scaled_dot_product_attention(*tensors, attn_mask=attn_mask)
    out, cache = ref.attention_forward(*case.args)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    (out_t * torch.from_numpy(dout)).sum().backward()
    for analytic, tensor in zip(ref.attention_backward(dout, cache), tensors):
        np.testing.assert_allclose(analytic, tensor.grad.numpy(), rtol=1e-10, atol=1e-12)


# -- invalid shapes: the message names every dimension --------------------------------------


def test_embedding_rejects_bad_indices():
    W = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"x \(2, 2\) \(N=2, T=2\) must index the V=4 rows of W \(4, 3\) "
                                         r"\(V=4, D=3\); got indices in \[0, 4\]"):
        ref.word_embedding_forward(np.array([[0, 4], [1, 2]]), W)
    with pytest.raises(ValueError, match=r"x must hold integer word indices; got dtype float64"):
        ref.word_embedding_forward(np.zeros((2, 2)), W)
    with pytest.raises(ValueError, match=r"W must have 2 dimensions \(V, D\); got shape \(4,\)"):
        ref.word_embedding_forward(np.zeros((2, 2), dtype=int), np.zeros(4))


def test_temporal_affine_rejects_mismatched_weights():
    with pytest.raises(ValueError, match=r"x \(2, 3, 4\) has N=2, T=3, D=4; w is \(5, 6\) \(needs D=4 rows\) "
                                         r"and b is \(6,\) \(needs M=6 entries\)"):
        ref.temporal_affine_forward(np.zeros((2, 3, 4)), np.zeros((5, 6)), np.zeros(6))


def test_temporal_softmax_loss_rejects_bad_targets_and_masks():
    x = np.zeros((2, 3, 4))
    ok = np.ones((2, 3), dtype=bool)
    with pytest.raises(ValueError, match=r"y must be integer targets of shape \(N, T\) = \(2, 3\) for x "
                                         r"\(2, 3, 4\) \(N=2, T=3, V=4\); got int64 \(3, 2\)"):
        ref.temporal_softmax_loss(x, np.zeros((3, 2), dtype=np.int64), ok)
    with pytest.raises(ValueError, match=r"mask must have shape \(N, T\) = \(2, 3\); got \(2, 4\)"):
        ref.temporal_softmax_loss(x, np.zeros((2, 3), dtype=int), np.ones((2, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"y must lie in \[0, V\) with V = 4 where mask is True; got range \[0, 4\]"):
        ref.temporal_softmax_loss(x, np.array([[0, 4, 1], [0, 0, 0]]), ok)
    with pytest.raises(ValueError, match=r"mask must be boolean \(or integers 0/1\); got dtype float64"):
        ref.temporal_softmax_loss(x, np.zeros((2, 3), dtype=int), np.ones((2, 3)))


def test_attention_rejects_mismatched_shapes():
    q = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"query \(2, 3, 4\) is \(N=2, S=3, E=4\), key \(2, 5, 3\) must be "
                                         r"\(N, T, E\) = \(2, T, 4\) and value \(2, 5, 6\) must be "
                                         r"\(N, T, Ev\) = \(2, 5, Ev\)"):
        ref.attention_forward(q, np.zeros((2, 5, 3)), np.zeros((2, 5, 6)))
    with pytest.raises(ValueError, match=r"value \(2, 4, 6\) must be \(N, T, Ev\) = \(2, 5, Ev\) with the T=5 of key"):
        ref.attention_forward(q, np.zeros((2, 5, 4)), np.zeros((2, 4, 6)))
    with pytest.raises(ValueError, match=r"mask must have shape \(S, T\) = \(3, 5\) or \(N, S, T\) = \(2, 3, 5\) "
                                         r"for N=2 samples, S=3 queries and T=5 keys; got \(5, 3\)"):
        ref.attention_forward(q, np.zeros((2, 5, 4)), np.zeros((2, 5, 1)), np.ones((5, 3), dtype=bool))


def test_attention_rejects_fully_masked_rows():
    q, k, v = np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), np.zeros((2, 5, 1))
    mask = np.ones((3, 5), dtype=bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"1 row\(s\) of the mask \(S=3 queries, T=5 keys\) are all False, "
                                         r"first mask\[1\]"):
        ref.attention_forward(q, k, v, mask)
    per_sample = np.ones((2, 3, 5), dtype=bool)
    per_sample[1, 2] = False
    with pytest.raises(ValueError, match=r"first mask\[1, 2\]"):
        ref.attention_forward(q, k, v, per_sample)
    with pytest.raises(ValueError, match=r"mask must be boolean \(True = attend\); got dtype int64"):
        ref.attention_forward(q, k, v, np.ones((3, 5), dtype=np.int64))


# -- realistic bugs the checker must catch, naming the right gradient -----------------------


def embedding_backward_fancy_index(dout, cache):
    """Bug: with repeated indices, ``dW[x] += dout`` keeps only one of the repeats."""
    x, shape, dtype = cache
    dW = np.zeros(shape, dtype=dtype)
    dW[x] += dout
    return dW


def test_embedding_fancy_index_bug_is_found_from_generated_cases():
    result = check_spec(get_spec("word_embedding"), backward=embedding_backward_fancy_index, examples=20)
    assert not result.passed
    assert result.gradient_verdicts() == {"W": "FAILED"}
    geometry = result.failing_case.geometry
    # The bug needs a repeated word; the shrunk case is the smallest with one.
    n, t = geometry["x"]
    assert geometry["distinct_indices"] < n * t
    assert n * t == 2 and geometry["distinct_indices"] == 1


def test_embedding_fancy_index_bug_is_invisible_without_repeats():
    W = np.random.default_rng(0).standard_normal((6, 2))
    x = np.array([[0, 5], [2, 3]])
    assert check_layer(ref.word_embedding_forward, embedding_backward_fancy_index, x, W, wrt=("W",)).passed
    report = check_layer(ref.word_embedding_forward, embedding_backward_fancy_index,
                         np.array([[0, 5], [5, 3]]), W, wrt=("W",))
    assert report.failed_gradients == ["W"]
    assert {m.index[0] for m in report.gradients["W"].mismatches} == {5}


def test_temporal_softmax_loss_averaged_over_time_fails():
    def loss_over_nt(x, y, mask):
        loss, dx = ref.temporal_softmax_loss(x, y, mask)
        return loss, dx / x.shape[1]  # bug: the loss is divided by N only, not by N * T

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 4, 3)), rng.integers(0, 3, size=(2, 4))
    mask = np.ones((2, 4), dtype=bool)
    mask[0, 1] = False
    report = check_loss(loss_over_nt, x, y, mask)
    assert report.failed_gradients == ["x"]
    assert "1/4 of the true gradient, and 4 is the length of axis 1" in report.gradients["x"].diagnosis
    result = check_spec(get_spec("temporal_softmax_loss"), forward=loss_over_nt, examples=20)
    assert not result.passed and result.failing_case.geometry["x"][1] == 2


def test_attention_backward_without_scale_fails_for_query_and_key():
    def backward(dout, cache):
        query, key, value, weights, _ = cache
        return ref.attention_backward(dout, (query, key, value, weights, 1.0))  # bug: no 1/sqrt(E)

    rng = np.random.default_rng(4)
    args = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 2))
    report = check_layer(ref.attention_forward, backward, *args)
    assert report.failed_gradients == ["query", "key"], str(report)
    assert "2 times the true gradient" in report.gradients["query"].diagnosis  # sqrt(E) = 2
    # With E = 1 the factor is 1: the shrunk generated case has E = 2.
    result = check_spec(get_spec("attention"), backward=backward, examples=20)
    assert result.gradient_verdicts() == {"query": "FAILED", "key": "FAILED", "value": "ok"}
    assert result.failing_case.geometry["query"][2] == 2
