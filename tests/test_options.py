"""One options object (CheckOptions): validated once, taken the same way everywhere."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import gradcheck
from gradcheck import CheckOptions
from gradcheck.testing import Checker
from reference_layers import affine_backward, affine_forward


def _affine_args(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=2)


def test_a_misspelt_option_fails_at_once_with_the_nearest_name() -> None:
    with pytest.raises(TypeError, match=r"unknown option 'metod'.*did you mean 'method'"):
        gradcheck.check_layer(affine_forward, affine_backward, *_affine_args(), metod="central")
    with pytest.raises(TypeError, match=r"unknown option 'localize'.*'localise'"):
        gradcheck.check_loss(lambda x: (float(np.sum(x**2)), 2 * x), np.ones(3), localize=False)
    with pytest.raises(TypeError, match="unknown option 'strictly'"):
        Checker(strictly=True)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("mode", "fast", "mode='fast' is not one of full, sample, directional"),
    ("method", "complex-step", "method='complex-step' is not one of"),
    ("seed", -1, "seed=-1 must be a non-negative integer"),
    ("seed", True, "seed=True must be a non-negative integer"),
    ("rtol", float("nan"), "rtol=nan must be a finite number"),
    ("samples", 0, "samples=0 must be a positive integer"),
    ("directions", 1.5, "directions=1.5 must be a positive integer"),
    ("directions", 0, "directions=0 must be a positive integer"),
    ("geometry", "square", "geometry='square' is not one of auto, cs231n, general"),
    ("dtype", "float16", "dtype='float16' is not one of float64, float32"),
    ("grouped", 1, "grouped=1 must be True or False"),
    ("budget", 0, "budget=0 must be a positive number"),
])
def test_a_bad_value_names_the_option_and_what_was_expected(field: str, value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        CheckOptions(**{field: value})
    with pytest.raises(ValueError, match=field):
        gradcheck.check_layer(affine_forward, affine_backward, *_affine_args(), **{field: value})


def test_options_are_frozen_and_round_trip_through_a_dict() -> None:
    opts = CheckOptions(mode="directional", seed=3, dtype=np.float32)
    assert opts.dtype == "float32"
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.seed = 4  # type: ignore[misc]
    assert CheckOptions.from_dict(opts.to_dict()) == opts
    assert CheckOptions.build(opts, seed=5) == dataclasses.replace(opts, seed=5)
    with pytest.raises(TypeError, match="options must be a CheckOptions"):
        CheckOptions.build({"seed": 1})  # type: ignore[arg-type]


def test_the_shrink_budget_follows_the_timeout_in_one_place() -> None:
    assert CheckOptions.within(100).budget == 25
    assert CheckOptions.within(8).budget == 5
    assert CheckOptions.within(100, seed=2).seed == 2


def test_an_options_object_and_overrides_give_the_same_report_as_keywords() -> None:
    args = _affine_args()
    opts = CheckOptions(mode="sample", samples=3, seed=4)
    by_object = gradcheck.check_layer(affine_forward, affine_backward, *args, options=opts)
    by_keywords = gradcheck.check_layer(affine_forward, affine_backward, *args,
                                        mode="sample", samples=3, seed=4)
    assert str(by_object) == str(by_keywords)
    assert by_object.mode == "sample"
    overridden = gradcheck.check_layer(affine_forward, affine_backward, *args, options=opts, mode="full")
    assert overridden.mode == "full"


class _Scale:
    def __init__(self) -> None:
        self.W = np.array([[1.5, -0.5], [0.25, 2.0]])
        self.dW = np.zeros_like(self.W)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.W

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.dW += self.x.T @ dout
        return dout @ self.W.T


def test_layer_objects_and_models_take_every_option() -> None:
    """check_object used to drop directions, localise and samples silently."""
    x = np.random.default_rng(1).normal(size=(3, 2))
    report = gradcheck.check_object(_Scale(), x, mode="directional", directions=3)
    assert report.passed
    assert report.gradients["W"].checked == "3 directions"
    sampled = gradcheck.check_object(_Scale(), x, mode="sample", samples=2)
    assert sampled.gradients["x"].checked == "2/6 entries + 1 direction"


def test_the_fixture_carries_an_options_object() -> None:
    checker = Checker(CheckOptions(mode="directional"), seed=2)
    assert checker.options == CheckOptions(mode="directional", seed=2)
    report = checker.layer(affine_forward, affine_backward, *_affine_args(), directions=4)
    assert report.mode == "directional"
