"""Max and average pooling: geometry strategy, loop oracles, gradients, torch, student bugs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, example, find, given, settings
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs import get_spec
from gradcheck.specs.conv import POOL_SPACING, pool_case
from gradcheck.strategies import PoolGeometry, pool_geometries, seeds
from gradcheck.suite import check_case, check_spec

DTYPES = [np.float64, np.float32]
KINDS = ["max_pool", "avg_pool"]
FORWARD = {"max_pool": ref.max_pool_forward_naive, "avg_pool": ref.avg_pool_forward_naive}
BACKWARD = {"max_pool": ref.max_pool_backward_naive, "avg_pool": ref.avg_pool_backward_naive}

# PoolGeometry(n, c, h, w, ph, pw, stride, pad): geometries that break naive code.
HARD = {
    "2x2-stride2": PoolGeometry(2, 3, 4, 4, 2, 2, 2, 0),
    "overlap-2x2-stride1": PoolGeometry(2, 2, 4, 5, 2, 2, 1, 0),
    "overlap-3x3-stride1": PoolGeometry(1, 2, 5, 5, 3, 3, 1, 0),
    "overlap-3x3-stride2": PoolGeometry(2, 1, 7, 7, 3, 3, 2, 0),
    "pool2x3": PoolGeometry(2, 2, 4, 7, 2, 3, 2, 0),
    "H!=W-N1": PoolGeometry(1, 1, 3, 6, 3, 2, 3, 0),
    "stride3": PoolGeometry(1, 2, 7, 8, 2, 2, 3, 0),
    "uneven-unreached-rows": PoolGeometry(2, 2, 5, 6, 2, 2, 2, 0),
    "pad1-3x3-stride2": PoolGeometry(2, 2, 5, 6, 3, 3, 2, 1),
    "pad1-overlap": PoolGeometry(1, 1, 4, 4, 2, 2, 1, 1),
    "1x1": PoolGeometry(1, 2, 3, 3, 1, 1, 1, 0),
}


def hard_examples(test):
    for geometry in HARD.values():
        test = example(geometry=geometry, seed=0)(test)
    return test


# -- independent oracles ------------------------------------------------------------------


def loop_pool(x, geometry, kind):
    """Plain loops: padded entries are -inf for max pooling and 0 (counted) for average."""
    g = geometry
    ho, wo = g.out_hw
    out = np.zeros((g.n, g.c, ho, wo))
    for n in range(g.n):
        for c in range(g.c):
            for i in range(ho):
                for j in range(wo):
                    values = []
                    for p in range(g.ph):
                        for q in range(g.pw):
                            r, s = i * g.stride + p - g.pad, j * g.stride + q - g.pad
                            inside = 0 <= r < g.h and 0 <= s < g.w
                            values.append(x[n, c, r, s] if inside else (-np.inf if kind == "max_pool" else 0.0))
                    out[n, c, i, j] = max(values) if kind == "max_pool" else sum(values) / len(values)
    return out


def count_windows(size, pad, window, stride):
    return sum(1 for start in range(size + 2 * pad) if start % stride == 0 and start + window <= size + 2 * pad)


def overlaps(g):
    ho, wo = g.out_hw
    return (g.stride < g.ph and ho >= 2) or (g.stride < g.pw and wo >= 2)


# -- the strategy -------------------------------------------------------------------------


@pytest.mark.parametrize("general", [True, False])
@pytest.mark.parametrize("overlapping", [None, True, False])
@given(data=st.data())
@settings(max_examples=40)
def test_pool_geometries_are_valid(general, overlapping, data):
    g = data.draw(pool_geometries(general=general, overlapping=overlapping))
    assert min(g.n, g.c, g.ph, g.pw, g.stride) >= 1
    # torch's rule, which also guarantees that every window holds a real entry.
    assert 0 <= 2 * g.pad <= min(g.ph, g.pw)
    expected = (count_windows(g.h, g.pad, g.ph, g.stride), count_windows(g.w, g.pad, g.pw, g.stride))
    assert g.out_hw == expected and min(expected) >= 1
    out, _ = ref.max_pool_forward_naive(np.zeros((g.n, g.c, g.h, g.w)), g.pool_param())
    assert out.shape == (g.n, g.c, *expected)
    if overlapping is not None:
        assert overlaps(g) == overlapping
    if not general:
        assert g.pad == 0 and "pad" not in g.pool_param()
        assert (g.h - g.ph) % g.stride == 0 and (g.w - g.pw) % g.stride == 0


@pytest.mark.parametrize(
    ("general", "condition"),
    [
        (True, lambda g: g.pad > 0 and overlaps(g)),
        (True, lambda g: (g.h + 2 * g.pad - g.ph) % g.stride != 0 and g.ph != g.pw),
        (False, lambda g: g.stride == 1 and g.ph == g.pw == 3 and g.n > 1),
        (False, lambda g: g.stride > max(g.ph, g.pw) and g.h != g.w),
    ],
)
def test_pool_geometries_reach_the_hard_cases(general, condition):
    found = find(pool_geometries(general=general), condition,
                 settings=settings(max_examples=2000, database=None, derandomize=True, phases=[Phase.generate]))
    assert condition(found)


def test_pool_inputs_are_tie_free_by_a_wide_gap():
    for dtype in DTYPES:
        x = pool_case(HARD["overlap-3x3-stride1"], 3, dtype).args[0].astype(np.float64)
        gaps = np.diff(np.sort(x.ravel()))
        assert gaps.min() >= POOL_SPACING * 0.99


# -- forward values -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@given(geometry=pool_geometries(), seed=seeds())
@hard_examples
def test_forward_matches_loop_oracle(kind, geometry, seed):
    x, pool_param = pool_case(geometry, seed).args
    out, _ = FORWARD[kind](x, pool_param)
    np.testing.assert_allclose(out, loop_pool(x, geometry, kind), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_is_preserved(kind, dtype):
    x, pool_param = pool_case(HARD["pad1-3x3-stride2"], 0, dtype).args
    out, cache = FORWARD[kind](x, pool_param)
    dx = BACKWARD[kind](np.ones_like(out), cache)
    assert out.dtype == dtype and dx.dtype == dtype


def test_aliases_are_the_naive_pairs():
    for kind in ("max_pool", "avg_pool"):
        for step in ("forward", "backward"):
            assert getattr(ref, f"{kind}_{step}") is getattr(ref, f"{kind}_{step}_naive")
            assert f"{kind}_{step}" in ref.__all__ and f"{kind}_{step}_naive" in ref.__all__


def test_max_pool_selects_by_real_part_and_keeps_the_imaginary_part():
    x = np.array([[[[1.0 + 5j, 2.0 - 1j], [0.5 + 9j, -3.0 + 0j]]]])
    out, _ = ref.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert out.dtype == np.complex128 and out[0, 0, 0, 0] == 2.0 - 1j


def test_overlapping_windows_accumulate_in_backward():
    # The centre is the maximum of all four 2x2 windows: it gets the sum of their gradients.
    x = np.array([[[[0.1, 0.2, 0.3], [0.4, 0.9, 0.5], [0.6, 0.7, 0.8]]]])
    param = {"pool_height": 2, "pool_width": 2, "stride": 1}
    _, cache = ref.max_pool_forward_naive(x, param)
    dout = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = ref.max_pool_backward_naive(dout, cache)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [0, 10.0, 0], [0, 0, 0]])
    dx_avg = ref.avg_pool_backward_naive(dout, ref.avg_pool_forward_naive(x, param)[1])
    np.testing.assert_allclose(dx_avg[0, 0], [[0.25, 0.75, 0.5], [1.0, 2.5, 1.5], [0.75, 1.75, 1.0]])


@pytest.mark.parametrize("kind", KINDS)
def test_rows_no_window_reaches_get_zero_gradient(kind):
    x, pool_param = pool_case(HARD["uneven-unreached-rows"], 0).args  # H = 5: row 4 unreached
    out, cache = FORWARD[kind](x, pool_param)
    dx = BACKWARD[kind](np.ones_like(out), cache)
    assert np.all(dx[:, :, 4, :] == 0) and dx[:, :, :4, :].any()


# -- gradients ----------------------------------------------------------------------------


def assert_passes(kind, case):
    report = check_case(get_spec(kind), case)
    assert report.passed, f"{case.describe()}\n{report}"
    assert report.method == "complex", report.method_note


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(geometry=pool_geometries(), seed=seeds())
@hard_examples
def test_gradients_general(kind, dtype, geometry, seed):
    assert_passes(kind, pool_case(geometry, seed, dtype))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_gradients_cs231n_contract(kind, dtype, data):
    assert_passes(kind, data.draw(get_spec(kind).cases(dtype=dtype, general=False), label="case"))


# -- torch as a second oracle -------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("kind", KINDS)
@given(geometry=pool_geometries(), seed=seeds())
@settings(max_examples=8)
@example(geometry=HARD["pad1-3x3-stride2"], seed=0)
@example(geometry=HARD["pad1-overlap"], seed=0)
@example(geometry=HARD["overlap-3x3-stride1"], seed=0)
def test_forward_and_gradients_match_torch(kind, geometry, seed):
    torch = pytest.importorskip("torch")
    x, pool_param = pool_case(geometry, seed).args
    out, cache = FORWARD[kind](x, pool_param)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    dx = BACKWARD[kind](dout, cache)

    tx = torch.tensor(x, requires_grad=True)
    pool = torch.nn.functional.max_pool2d if kind == "max_pool" else torch.nn.functional.avg_pool2d
    t_out = pool(tx, (geometry.ph, geometry.pw), stride=geometry.stride, padding=geometry.pad)
    t_out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg="out")
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg="dx")


# -- invalid geometry ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("x_shape", "pool_param", "expected"),
    [
        ((1, 1, 4, 4), {"pool_height": 2, "pool_width": 3, "stride": 1, "pad": 2},
         ["pad (h, w) = (2, 2)", "pool_height=2", "pool_width=3", "(1, 1)"]),
        ((1, 1, 2, 5), {"pool_height": 3, "pool_width": 2, "stride": 1},
         ["x (1, 1, 2, 5)", "H + 2*pad_h = 2 + 2*0 = 2", "W + 2*pad_w = 5 + 2*0 = 5", "pool_height=3",
          "pool_width=2"]),
        ((1, 1, 4, 4), {"pool_height": 2, "pool_width": 2, "stride": 0}, ["pool_param['stride']", ">= 1"]),
        ((1, 1, 4, 4), {"pool_height": 0, "pool_width": 2, "stride": 1}, ["pool_param['pool_height']", ">= 1"]),
        ((1, 1, 4, 4), {"pool_height": 2, "stride": 2}, ["missing ['pool_width']"]),
        ((4, 4), {"pool_height": 2, "pool_width": 2, "stride": 2}, ["x must have 4 dimensions", "(4, 4)"]),
    ],
)
def test_invalid_geometry_names_every_dimension(kind, x_shape, pool_param, expected):
    with pytest.raises(ValueError) as info:
        FORWARD[kind](np.zeros(x_shape), pool_param)
    for text in expected:
        assert text in str(info.value)


# -- realistic student backward passes, and the bugs the checker must catch ----------------


def student_max_pool_backward(dout, cache, *, assign=False, first_element=False):
    """A CS231n-style loop backward (no padding), correct unless a bug is switched on."""
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    n_, c_, ho, wo = dout.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    window = x[n, c, i * s : i * s + ph, j * s : j * s + pw]
                    p, q = (0, 0) if first_element else np.unravel_index(np.argmax(window), window.shape)
                    if assign:
                        dx[n, c, i * s + p, j * s + q] = dout[n, c, i, j]  # bug: overwrites
                    else:
                        dx[n, c, i * s + p, j * s + q] += dout[n, c, i, j]
    return dx


MAX_POOL = get_spec("max_pool")


def check_student(geometry, **bug):
    return check_case(MAX_POOL, pool_case(geometry, 0),
                      backward=lambda dout, cache: student_max_pool_backward(dout, cache, **bug))


def test_the_student_backward_is_right_without_bugs():
    for name in ("2x2-stride2", "overlap-2x2-stride1", "overlap-3x3-stride2", "pool2x3"):
        report = check_student(HARD[name])
        assert report.passed, f"{name}\n{report}"


@given(geometry=pool_geometries(general=False, overlapping=False), seed=seeds())
@settings(max_examples=8)
def test_assign_instead_of_accumulate_is_invisible_without_overlap(geometry, seed):
    case = pool_case(geometry, seed)
    report = check_case(MAX_POOL, case, backward=lambda d, c: student_max_pool_backward(d, c, assign=True))
    assert report.passed, f"{case.describe()}\n{report}"


def test_assign_instead_of_accumulate_fails_with_overlapping_windows():
    report = check_student(HARD["overlap-3x3-stride1"], assign=True)
    assert report.failed_gradients == ["x"]

    result = check_spec(MAX_POOL, backward=lambda d, c: student_max_pool_backward(d, c, assign=True),
                        general=False, examples=15)
    assert result.gradient_verdicts() == {"x": "FAILED"}
    g = result.failing_case.geometry
    assert g["stride"] < max(g["pool_height"], g["pool_width"])  # only overlapping windows show it


def test_routing_to_the_first_element_fails():
    assert check_student(HARD["1x1"], first_element=True).passed  # a 1x1 window: harmless
    report = check_student(HARD["2x2-stride2"], first_element=True)
    assert report.failed_gradients == ["x"]

    result = check_spec(MAX_POOL, backward=lambda d, c: student_max_pool_backward(d, c, first_element=True),
                        general=False, examples=15)
    assert result.gradient_verdicts() == {"x": "FAILED"}


def test_avg_pool_assign_instead_of_accumulate_fails_with_overlap():
    spec = get_spec("avg_pool")

    def backward(dout, cache):
        x, param = cache
        ph, pw, s = param["pool_height"], param["pool_width"], param["stride"]
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                dx[:, :, i * s : i * s + ph, j * s : j * s + pw] = dout[:, :, i : i + 1, j : j + 1] / (ph * pw)
        return dx

    assert check_case(spec, pool_case(HARD["2x2-stride2"], 0), backward=backward).passed
    report = check_case(spec, pool_case(HARD["overlap-2x2-stride1"], 0), backward=backward)
    assert report.failed_gradients == ["x"]


# -- the reshape trick has its own, narrower contract --------------------------------------


def max_pool_forward_reshape(x, pool_param):
    """The CS231n reshape trick: only square tiles that do not overlap and divide the input."""
    n, c, h, w = x.shape
    k = pool_param["pool_height"]
    assert pool_param["pool_width"] == pool_param["stride"] == k, "Invalid pool params"
    assert h % k == 0 and w % k == 0
    tiles = x.reshape(n, c, h // k, k, w // k, k)
    out = tiles.max(axis=3).max(axis=4)
    return out, (x, tiles, out)


def max_pool_backward_reshape(dout, cache):
    x, tiles, out = cache
    is_max = tiles == out[:, :, :, None, :, None]
    return (is_max * dout[:, :, :, None, :, None]).reshape(x.shape)


@given(data=st.data())
@settings(max_examples=30)
def test_reshape_specs_keep_the_reshape_contract(data):
    for name in ("max_pool_reshape", "avg_pool_reshape"):
        x, param = data.draw(get_spec(name).cases(general=True)).args
        k = param["pool_height"]
        assert param["pool_width"] == param["stride"] == k and "pad" not in param
        assert x.shape[2] % k == 0 and x.shape[3] % k == 0


def test_a_correct_reshape_layer_passes_its_own_spec():
    names = ("max_pool_forward_reshape", "max_pool_backward_reshape")
    assert names in get_spec("max_pool_reshape").names
    assert names not in get_spec("max_pool").names  # its general cases would be a false alarm
    result = check_spec(get_spec("max_pool_reshape"), max_pool_forward_reshape, max_pool_backward_reshape,
                        examples=10)
    assert result.passed, result.failure
