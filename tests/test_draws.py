"""The checker's random draws: directions and upstream gradients."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.checker import checker_rng
from gradcheck.draws import direction, directions, signed_halves, upstream


def test_signed_halves_have_both_signs_and_no_tiny_magnitudes():
    v = signed_halves(checker_rng(0), (200, 300))
    assert v.shape == (200, 300) and v.dtype == np.float64
    assert np.all(np.abs(v) >= 0.5) and np.all(np.abs(v) < 1.0)
    assert 0.48 < np.mean(v > 0) < 0.52
    # magnitudes spread over the whole octave, not a few levels
    assert len(np.unique(np.abs(v))) > 50_000
    assert abs(float(np.mean(np.abs(v))) - 0.75) < 0.01


def test_draws_repeat_with_the_seed_and_differ_between_seeds():
    a, b, c = (signed_halves(checker_rng(s), (7,)) for s in (3, 3, 4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_odd_sizes_and_empty_arrays():
    assert signed_halves(checker_rng(0), (3, 1)).shape == (3, 1)
    assert signed_halves(checker_rng(0), (0, 4)).shape == (0, 4)


def test_direction_is_scaled_like_its_input():
    x = np.array([0.0, 0.1, -3.0, 1e3])
    d = direction(checker_rng(1), x)
    scale = np.maximum(np.abs(x), 1.0)
    assert np.all(np.abs(d) >= 0.5 * scale) and np.all(np.abs(d) < scale)


def test_directions_with_a_step_scale_exactly():
    xs = [np.full((4, 5), 2.0), np.ones(3)]
    unit = directions(checker_rng(2), xs)
    step = 2.0 ** -17
    stepped = directions(checker_rng(2), xs, step=step)
    for u, s in zip(unit, stepped):
        assert u.dtype == np.float64 and u.shape == s.shape
        # the same random signs and mantissas, an exact power-of-two apart
        assert np.array_equal(s / step, u)


def test_a_step_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        directions(checker_rng(0), [np.ones(2)], step=3e-6)


def test_upstream_takes_the_outputs_dtype():
    for dtype in (np.float32, np.float64):
        d = upstream(checker_rng(0), np.zeros((2, 3), dtype=dtype))
        assert d.dtype == dtype and np.all(np.abs(d) >= 0.25)


def test_checker_rng_is_the_documented_stream_and_fresh_each_time():
    for seed in (0, 7, 2**40):
        expected = np.random.default_rng([seed, 0x67726164]).random(4)
        first, second = checker_rng(seed), checker_rng(seed)
        assert np.array_equal(first.random(4), expected)
        assert np.array_equal(second.random(4), expected)  # not advanced by the first


def test_upstream_magnitudes_spread_like_a_normal_draw():
    d = upstream(checker_rng(0), np.zeros(200_000))
    a = np.abs(d)
    assert a.min() >= 0.25 and a.max() < 4.0
    assert 0.49 < np.mean(d > 0) < 0.51
    # four octaves, equally often
    counts = np.histogram(np.log2(a), bins=4, range=(-2, 2))[0]
    assert np.all(np.abs(counts / a.size - 0.25) < 0.01)
    # root-mean-square against mean absolute value as for a standard normal (1.2533)
    assert abs(np.sqrt(np.mean(d * d)) / np.mean(a) - 1.2533) < 0.02
