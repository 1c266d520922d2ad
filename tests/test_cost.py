"""What a check costs in calls of the user's code, step by step (counts, not times)."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.kinds import ViolationKind
from reference_layers import affine_backward, affine_forward


class Counted:
    """A pair whose forward and backward calls are counted."""

    def __init__(self, backward=affine_backward) -> None:
        self.forwards = 0
        self.backwards = 0
        self._backward = backward

    def forward(self, x, w, b):
        self.forwards += 1
        return affine_forward(x, w, b)

    def backward(self, dout, cache):
        self.backwards += 1
        return self._backward(dout, cache)


def _args():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 6)), rng.normal(size=(6, 4)), rng.normal(size=4)


def test_a_directional_verdict_on_a_correct_layer_costs_three_forwards_and_one_backward() -> None:
    pair = Counted()
    report = gradcheck.check_layer(pair.forward, pair.backward, *_args(), mode="directional")
    assert report.passed, str(report)
    assert (pair.forwards, pair.backwards) == (3, 1)
    assert report.n_evaluations == 3


def test_a_disagreeing_directional_verdict_makes_the_deferred_contract_calls() -> None:
    def db_mean(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw, db / dout.shape[0]

    pair = Counted(db_mean)
    report = gradcheck.check_layer(pair.forward, pair.backward, *_args(), mode="directional")
    assert not report.passed and report.failed_gradients == ["b"], str(report)
    # the repeat forward and backward(2 * dout), then the round-off run of backward
    assert pair.backwards >= 3
    assert pair.forwards >= 5


@pytest.mark.parametrize("mode", ["full", "sample"])
def test_entrywise_modes_make_the_repeat_calls_before_comparing(mode: str) -> None:
    pair = Counted()
    report = gradcheck.check_layer(pair.forward, pair.backward, *_args(), mode=mode)
    assert report.passed, str(report)
    assert pair.backwards == 3  # first call, backward(2 * dout), the round-off measurement


def test_a_random_forward_is_still_named_when_the_cheap_verdict_is_skipped() -> None:
    """The joint direction cannot agree with a forward that draws a fresh mask, so the
    deferred repeat call runs and names it."""
    def forward(x, w, b):
        out, cache = affine_forward(x, w, b)
        mask = np.random.default_rng().random(out.shape) < 0.5
        return out * mask, cache

    report = gradcheck.check_layer(forward, affine_backward, *_args(), mode="directional")
    assert not report.passed
    assert ViolationKind.NONDETERMINISTIC_FORWARD in {v.kind for v in report.violations}, str(report)
