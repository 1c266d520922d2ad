"""Each diagnosis is a tested claim: a pattern in, the right sentence out."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.diagnose import diagnose_overlap, diagnose_shape, diagnose_values


@pytest.mark.parametrize("grad,arg,expected", [
    ((3, 5), (5, 3), "dw looks transposed"),
    ((2, 4, 3), (4, 3, 2), "axes of w in the wrong order"),
    ((8, 5), (5,), "extra leading axes (8,)"),
    ((1, 5), (5,), "only axes of size 1 differ"),
    ((8, 5), (1, 5), "broadcast along axes (0,)"),
    ((15,), (5, 3), "right number of entries"),
    ((3,), (5, 3), "summed over axes that belong to w"),
    ((7,), (5, 3), "must have the shape of w, (5, 3); it has (7,)"),
    ((2, 3, 0, 0), (2, 3, 4, 4), "[p:-p] gives nothing when p = 0"),
])
def test_shape_diagnoses(grad, arg, expected):
    assert expected in diagnose_shape("w", grad, arg)


def _diag(a, n, **kw):
    wrong = ~np.isclose(a, n, rtol=1e-9, atol=0)
    return diagnose_values("x", a, n, wrong, **kw)


@pytest.fixture
def n(rng):
    return rng.standard_normal((4, 3))


def test_all_zero(n):
    assert "dx is all zeros" in _diag(np.zeros_like(n), n)


def test_sign(n):
    assert "wrong sign" in _diag(-n, n)


@pytest.mark.parametrize("factor,expected", [
    (1 / 4, "1/4 of the true gradient"),
    (4.0, "4 times the true gradient"),
    (2.0, "a factor of 2 is off"),
    (0.5, "a factor of 2 is off"),
    (1.7, "1.7 times the true gradient"),
    (1 / 3, "1/3 of the true gradient, and 3 is the length of axis 1"),
])
def test_scale(factor, expected, n):
    assert expected in _diag(n * factor, n, batch_size=4)


def test_transposed_values(rng):
    n = rng.standard_normal((3, 3))
    assert "transpose" in _diag(n.T.copy(), n)


def test_missing_contributions(n):
    a = n.copy()
    a[1, 2] = 0.0
    a[3, 0] = 0.0
    assert "zero at every mismatched entry (2 of 12)" in _diag(a, n)


def test_contribution_where_none_is_due(n):
    n = n.copy()
    n[1, :] = 0.0
    a = n.copy()
    a[1, :] = 0.5
    assert "non-zero exactly where the numeric gradient is zero (3 of 12" in _diag(a, n)


def test_wrong_mask(n):
    n = n.copy()
    n[0, :2] = 0.0
    a = n.copy()
    a[0, :2] = 1.0
    a[2, 1] = 0.0
    assert "mask selects the wrong entries" in _diag(a, n)


def test_some_batch_elements(n):
    a = n.copy()
    a[2] += 1.0
    assert "only for batch element(s) 2 of 4" in _diag(a, n, batch_axis=True)
    assert _diag(a, n, batch_axis=False) is None


def test_border_only(rng):
    n = rng.standard_normal((2, 1, 5, 5))
    a = n.copy()
    a[:, :, 0, :] += 1.0
    a[:, :, :, -1] += 1.0
    assert "border rows/columns" in _diag(a, n)


def test_stride_aligned(rng):
    n = rng.standard_normal((1, 1, 6, 6))
    a = n.copy()
    a[:, :, ::2, ::2] += 1.0
    assert "every 2nd row/column" in _diag(a, n)


def test_no_pattern(rng, n):
    assert _diag(n + rng.standard_normal(n.shape), n) is None


def test_nothing_wrong(n):
    assert diagnose_values("x", n, n, np.zeros(n.shape, bool)) is None


def test_one_entry_is_no_evidence_of_an_arbitrary_factor():
    n = np.array([[0.5]])
    assert _diag(n * 20.72, n) is None
    assert "wrong sign" in _diag(-n, n)
    assert "1/3 of the true gradient" in _diag(n / 3, n, batch_size=3)


def test_overlap_pattern():
    assert "assigned (=) where they must be accumulated" in diagnose_overlap("x", [2, 3], [1, 0])
    assert diagnose_overlap("x", [2, 3], [1, 2]) is None
    assert diagnose_overlap("x", [1, 2], [1]) is None
    assert diagnose_overlap("x", [2, 2], [2, 3]) is None
