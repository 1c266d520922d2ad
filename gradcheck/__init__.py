"""gradcheck: tells you whether a hand-written backward pass is right, and if not, why.

>>> import numpy as np, gradcheck
>>> from reference_layers import affine_forward, affine_backward
>>> rng = np.random.default_rng(0)
>>> x, w, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)
>>> gradcheck.check_layer(affine_forward, affine_backward, x, w, b).passed
True
"""

from gradcheck.array_api import check_array_api, check_torch
from gradcheck.check import (
    assert_gradients,
    assert_loss_gradients,
    check_layer,
    check_loss,
)
from gradcheck.contract import Violation
from gradcheck.objects import check_model, check_object
from gradcheck.options import CheckOptions
from gradcheck.report import GradcheckWarning, GradientMismatch, GradientResult, Report
from gradcheck.testing import LayerMismatch, check_like

__all__ = [
    "CheckOptions",
    "GradcheckWarning",
    "GradientMismatch",
    "GradientResult",
    "LayerMismatch",
    "Report",
    "Violation",
    "assert_gradients",
    "assert_loss_gradients",
    "check_array_api",
    "check_layer",
    "check_like",
    "check_loss",
    "check_model",
    "check_object",
    "check_torch",
]

__version__ = "0.1.0"
