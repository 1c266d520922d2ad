"""The convolution layer: geometry strategy, forward oracles, gradients, torch, student bugs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import Phase, example, find, given, settings
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs import get_spec
from gradcheck.specs.conv import conv_case
from gradcheck.strategies import ConvGeometry, conv_geometries, seeds
from gradcheck.suite import check_case, check_spec

SPEC = get_spec("conv")
DTYPES = [np.float64, np.float32]


def G(n, c, h, w, f, hh, ww, stride=1, pad=0, dilation=1, groups=1):
    """A ConvGeometry with int-or-pair stride/pad/dilation, for readable examples."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    return ConvGeometry(n, c, h, w, f, hh, ww, pair(stride), pair(pad), pair(dilation), groups)


# Geometries that break naive code, each named for what it exercises.
HARD = {
    "pad0": G(2, 3, 5, 5, 2, 3, 3, stride=1, pad=0),
    "stride2": G(2, 3, 5, 5, 2, 3, 3, stride=2, pad=1),
    "stride3-uneven": G(2, 2, 7, 8, 2, 2, 2, stride=3, pad=1),
    "kernel2x3": G(2, 2, 4, 6, 3, 2, 3, stride=1, pad=1),
    "H!=W-N1": G(1, 2, 3, 7, 2, 3, 3, stride=2, pad=1),
    "uneven-unreached-rows": G(2, 2, 6, 7, 2, 3, 3, stride=2, pad=0),
    "per-axis-stride-pad": G(2, 2, 6, 5, 2, 3, 2, stride=(2, 1), pad=(1, 0)),
    "dilation2": G(2, 2, 7, 7, 2, 3, 3, stride=1, pad=1, dilation=2),
    "dilation-stride": G(1, 2, 8, 6, 2, 2, 3, stride=(2, 3), pad=(0, 2), dilation=(3, 1)),
    "groups2": G(2, 4, 5, 5, 4, 3, 3, stride=1, pad=1, groups=2),
    "groups3": G(1, 6, 4, 4, 3, 2, 2, stride=1, pad=0, groups=3),
    "pad-beyond-kernel": G(1, 1, 3, 3, 2, 1, 1, stride=1, pad=2),
    "kernel-covers-input": G(3, 1, 3, 4, 1, 3, 4, stride=1, pad=0),
}


def hard_examples(test):
    for geometry in HARD.values():
        test = example(geometry=geometry, seed=0)(test)
    return test


# -- independent oracles ------------------------------------------------------------------


def loop_conv(x, w, b, geometry):
    """Plain 6-deep loop: cross-correlation with per-axis stride/pad/dilation and groups."""
    (sh, sw), (ph, pw), (dh, dw), groups = geometry.stride, geometry.pad, geometry.dilation, geometry.groups
    n_, _, h_, w_ = x.shape
    f_, cg, hh, ww = w.shape
    ho, wo = geometry.out_hw
    fg = f_ // groups
    out = np.zeros((n_, f_, ho, wo))
    for n in range(n_):
        for f in range(f_):
            g = f // fg
            for i in range(ho):
                for j in range(wo):
                    total = b[f]
                    for c in range(cg):
                        for p in range(hh):
                            for q in range(ww):
                                r = i * sh + p * dh - ph
                                s = j * sw + q * dw - pw
                                if 0 <= r < h_ and 0 <= s < w_:
                                    total += w[f, c, p, q] * x[n, g * cg + c, r, s]
                    out[n, f, i, j] = total
    return out


def scipy_conv(x, w, b, pad):
    """Stride 1, no dilation, no groups: scipy's 'valid' correlation per (n, f), summed over C."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    return np.stack([
        np.stack([
            sum(scipy.signal.correlate(xp[n, c], w[f, c], mode="valid") for c in range(x.shape[1])) + b[f]
            for f in range(w.shape[0])
        ])
        for n in range(x.shape[0])
    ])


def count_positions(size, pad, kernel, stride, dilation):
    """How many window positions fit, by trying each start (independent of the formula)."""
    span = dilation * (kernel - 1) + 1
    return sum(1 for start in range(0, size + 2 * pad) if start % stride == 0 and start + span <= size + 2 * pad)


# -- the strategy -------------------------------------------------------------------------


@pytest.mark.parametrize("general", [True, False])
@given(data=st.data())
@settings(max_examples=60)
def test_conv_geometries_are_valid(general, data):
    g = data.draw(conv_geometries(general=general))
    assert g.n >= 1 and g.c % g.groups == 0 and g.f % g.groups == 0
    assert min(g.stride) >= 1 and min(g.pad) >= 0 and min(g.dilation) >= 1
    expected = (
        count_positions(g.h, g.pad[0], g.hh, g.stride[0], g.dilation[0]),
        count_positions(g.w, g.pad[1], g.ww, g.stride[1], g.dilation[1]),
    )
    assert g.out_hw == expected and min(expected) >= 1
    x = np.zeros((g.n, g.c, g.h, g.w))
    w = np.zeros((g.f, g.c // g.groups, g.hh, g.ww))
    out, _ = ref.conv_forward_naive(x, w, np.zeros(g.f), g.conv_param())
    assert out.shape == (g.n, g.f, *expected)
    if not general:
        # The CS231n contract: square int stride and pad, no dilation or groups, even division.
        param = g.conv_param()
        assert set(param) == {"stride", "pad"}
        assert type(param["stride"]) is int and type(param["pad"]) is int
        assert (g.h + 2 * g.pad[0] - g.hh) % g.stride[0] == 0
        assert (g.w + 2 * g.pad[1] - g.ww) % g.stride[1] == 0


@pytest.mark.parametrize(
    ("general", "description", "condition"),
    [
        (True, "groups 3 with dilation", lambda g: g.groups == 3 and g.dilation != (1, 1)),
        (True, "per-axis stride and pad", lambda g: g.stride[0] != g.stride[1] and g.pad[0] != g.pad[1]),
        (True, "uneven division", lambda g: (g.h + 2 * g.pad[0] - g.hh) % g.stride[0] != 0),
        (True, "non-square kernel, H != W", lambda g: g.hh != g.ww and g.h != g.w),
        (False, "stride 3 with padding", lambda g: g.stride == (3, 3) and g.pad[0] > 0),
        (False, "pad 0, stride 2, N > 1", lambda g: g.pad == (0, 0) and g.stride == (2, 2) and g.n > 1),
    ],
)
def test_conv_geometries_reach_the_hard_cases(general, description, condition):
    found = find(conv_geometries(general=general), condition,
                 settings=settings(max_examples=2000, database=None, derandomize=True, phases=[Phase.generate]))
    assert condition(found), description


# -- forward values -----------------------------------------------------------------------


@given(geometry=conv_geometries(), seed=seeds())
@hard_examples
def test_forward_matches_loop_oracle(geometry, seed):
    x, w, b, conv_param = conv_case(geometry, seed).args
    out, _ = ref.conv_forward_naive(x, w, b, conv_param)
    np.testing.assert_allclose(out, loop_conv(x, w, b, geometry), rtol=1e-12, atol=1e-12)


@given(geometry=conv_geometries(general=False), seed=seeds())
def test_forward_matches_scipy_correlate(geometry, seed):
    geometry = geometry._replace(stride=(1, 1))  # scipy.signal.correlate has no stride
    x, w, b, conv_param = conv_case(geometry, seed).args
    out, _ = ref.conv_forward_naive(x, w, b, conv_param)
    np.testing.assert_allclose(out, scipy_conv(x, w, b, geometry.pad), rtol=1e-12, atol=1e-12)


def test_forward_is_cross_correlation_not_flipped():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0] = 1.0  # picks the top-left entry of each window, unflipped
    out, _ = ref.conv_forward_naive(x, w, np.zeros(1), {"stride": 1, "pad": 0})
    np.testing.assert_array_equal(out[0, 0], [[0.0, 1.0], [3.0, 4.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_is_preserved(dtype):
    x, w, b, conv_param = conv_case(HARD["groups2"], 0, dtype).args
    out, cache = ref.conv_forward_naive(x, w, b, conv_param)
    grads = ref.conv_backward_naive(np.ones_like(out), cache)
    assert out.dtype == dtype and [g.dtype for g in grads] == [dtype] * 3


def test_aliases_are_the_naive_pair():
    assert ref.conv_forward is ref.conv_forward_naive
    assert ref.conv_backward is ref.conv_backward_naive
    assert {"conv_forward", "conv_backward", "conv_forward_naive", "conv_backward_naive"} <= set(ref.__all__)


def test_rows_and_columns_no_window_reaches_get_zero_gradient():
    geometry = HARD["uneven-unreached-rows"]  # H = 6, HH = 3, stride 2, pad 0: row 5 unreached
    x, w, b, conv_param = conv_case(geometry, 0).args
    out, cache = ref.conv_forward_naive(x, w, b, conv_param)
    dx, _, _ = ref.conv_backward_naive(np.ones_like(out), cache)
    assert np.all(dx[:, :, 5, :] == 0)
    assert np.all(dx[:, :, :5, :].any(axis=(0, 1, 3)))


# -- gradients ----------------------------------------------------------------------------


def assert_passes(case):
    report = check_case(SPEC, case)
    assert report.passed, f"{case.describe()}\n{report}"
    assert report.method == "complex", report.method_note


@pytest.mark.parametrize("dtype", DTYPES)
@given(geometry=conv_geometries(), seed=seeds())
@hard_examples
def test_gradients_general(dtype, geometry, seed):
    assert_passes(conv_case(geometry, seed, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_gradients_cs231n_contract(dtype, data):
    assert_passes(data.draw(SPEC.cases(dtype=dtype, general=False), label="case"))


# -- torch as a second oracle -------------------------------------------------------------


@pytest.mark.torch
@given(geometry=conv_geometries(), seed=seeds())
@settings(max_examples=8)
@example(geometry=HARD["groups3"], seed=0)
@example(geometry=HARD["dilation-stride"], seed=0)
@example(geometry=HARD["per-axis-stride-pad"], seed=0)
def test_forward_and_gradients_match_torch(geometry, seed):
    torch = pytest.importorskip("torch")
    x, w, b, conv_param = conv_case(geometry, seed).args
    out, cache = ref.conv_forward_naive(x, w, b, conv_param)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    dx, dw, db = ref.conv_backward_naive(dout, cache)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    t_out = torch.nn.functional.conv2d(tx, tw, tb, stride=geometry.stride, padding=geometry.pad,
                                       dilation=geometry.dilation, groups=geometry.groups)
    t_out.backward(torch.from_numpy(dout))
    for name, ours, theirs in [("out", out, t_out), ("dx", dx, tx.grad), ("dw", dw, tw.grad),
                               ("db", db, tb.grad)]:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


# -- invalid geometry ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "b_shape", "conv_param", "expected"),
    [
        ((2, 3, 5, 5), (4, 2, 3, 3), (4,), {"stride": 1, "pad": 1},
         ["x (2, 3, 5, 5)", "C=3", "w (4, 2, 3, 3)", "F=4", "HH=3", "WW=3", "groups=1",
          "w has 2 input channels but C/groups = 3/1 = 3"]),
        ((2, 3, 5, 5), (4, 1, 3, 3), (4,), {"stride": 1, "pad": 1, "groups": 2},
         ["x (2, 3, 5, 5)", "w (4, 1, 3, 3)", "C=3 is not divisible by groups=2"]),
        ((2, 4, 5, 5), (3, 2, 3, 3), (3,), {"stride": 1, "pad": 1, "groups": 2},
         ["x (2, 4, 5, 5)", "w (3, 2, 3, 3)", "F=3 is not divisible by groups=2"]),
        ((2, 3, 5, 5), (4, 3, 3, 3), (5,), {"stride": 1, "pad": 1},
         ["b (5,)", "b has 5 entries but there are F=4 filters"]),
        ((1, 1, 2, 4), (1, 1, 3, 2), (1,), {"stride": 1, "pad": 0, "dilation": (1, 3)},
         ["H + 2*pad_h = 2 + 2*0 = 2", "W + 2*pad_w = 4 + 2*0 = 4", "dilation_h*(HH-1)+1 = 1*(3-1)+1 = 3",
          "dilation_w*(WW-1)+1 = 3*(2-1)+1 = 4"]),
        ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 0, "pad": 0}, ["conv_param['stride']", ">= 1", "0"]),
        ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 1, "pad": (1, -1)}, ["conv_param['pad']", ">= 0", "(1, -1)"]),
        ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 1, "pad": 0, "dilation": 0}, ["conv_param['dilation']", ">= 1"]),
        ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": (1, 2, 3), "pad": 0}, ["conv_param['stride']", "(h, w) pair"]),
        ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 1.5, "pad": 0}, ["conv_param['stride']", "1.5"]),
        ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 1, "pad": 0, "groups": True}, ["conv_param['groups']", "True"]),
        ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 1}, ["'stride' and 'pad'", "['stride']"]),
        ((1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 1, "pad": 0}, ["x must have 4 dimensions", "N, C, H, W", "(1, 4, 4)"]),
    ],
)
def test_invalid_geometry_names_every_dimension(x_shape, w_shape, b_shape, conv_param, expected):
    with pytest.raises(ValueError) as info:
        ref.conv_forward_naive(np.zeros(x_shape), np.zeros(w_shape), np.zeros(b_shape), conv_param)
    for text in expected:
        assert text in str(info.value)


# -- a realistic student backward, and the bugs the checker must catch ---------------------


def student_conv_backward(dout, cache, *, crop_with_negative_slice=False, ignore_stride=False,
                          db_mean=False):
    """A CS231n-style loop backward (int stride/pad), correct unless a bug is switched on."""
    x, w, _, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    step = 1 if ignore_stride else s
    hh, ww = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * step, i * step + hh), slice(j * step, j * step + ww)
            dw += np.einsum("nf,nchw->fchw", dout[:, :, i, j], xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nf,fchw->nchw", dout[:, :, i, j], w)
    db = dout.sum(axis=(0, 2, 3)) / (len(dout) if db_mean else 1)
    if crop_with_negative_slice:
        dx = dxp[:, :, p:-p, p:-p]  # empty when p = 0
    else:
        dx = dxp[:, :, p : p + x.shape[2], p : p + x.shape[3]]
    return dx, dw, db


def check_student(geometry, **bug):
    def backward(dout, cache):
        return student_conv_backward(dout, cache, **bug)

    return check_case(SPEC, conv_case(geometry, 0), backward=backward)


def test_the_student_backward_is_right_without_bugs():
    for name in ("pad0", "stride2", "H!=W-N1", "kernel2x3"):
        report = check_student(HARD[name])
        assert report.passed, f"{name}\n{report}"


def test_negative_slice_crop_fails_at_pad_0_only():
    assert check_student(HARD["stride2"], crop_with_negative_slice=True).passed  # pad 1: harmless
    report = check_student(HARD["pad0"], crop_with_negative_slice=True)
    assert report.failed_gradients == ["x"]
    assert "shape" in str(report)

    result = check_spec(SPEC, backward=lambda d, c: student_conv_backward(d, c, crop_with_negative_slice=True),
                        general=False, examples=15)
    # An empty dx cannot be compared entry by entry: it is reported as a shape violation.
    assert result.failure.failed_gradients == ["x"]
    assert result.gradient_verdicts() == {"x": "FAILED", "w": "ok", "b": "ok"}
    assert [v.argument for v in result.failure.violations] == ["x"]
    assert result.failing_case.geometry["pad"] == 0


def test_ignoring_the_stride_fails_dx_and_dw_with_stride_above_1():
    assert check_student(HARD["pad0"], ignore_stride=True).passed  # stride 1: harmless
    report = check_student(HARD["stride2"], ignore_stride=True)
    assert report.failed_gradients == ["x", "w"]

    result = check_spec(SPEC, backward=lambda d, c: student_conv_backward(d, c, ignore_stride=True),
                        general=False, examples=15)
    assert result.gradient_verdicts() == {"x": "FAILED", "w": "FAILED", "b": "ok"}
    assert result.failing_case.geometry["stride"] == 2  # shrunk to the smallest stride that shows it


def test_bias_gradient_averaged_over_the_batch_fails_db():
    assert check_student(HARD["H!=W-N1"], db_mean=True).passed  # N = 1: harmless
    report = check_student(HARD["stride2"], db_mean=True)
    assert report.failed_gradients == ["b"]
    assert "1/2" in report.gradients["b"].diagnosis

    result = check_spec(SPEC, backward=lambda d, c: student_conv_backward(d, c, db_mean=True),
                        general=False, examples=15)
    assert result.gradient_verdicts() == {"x": "ok", "w": "ok", "b": "FAILED"}
    assert result.failing_case.geometry["x"][0] == 2
