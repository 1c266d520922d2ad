"""The words a check's results are made of, as enums (strings too: ``Status.PASSED ==
"passed"``, so JSON and text show the plain word)."""

from __future__ import annotations

from enum import Enum

__all__ = ["Method", "Status", "Verdict", "ViolationKind"]


class _Word(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Status(_Word):
    """The verdict on one gradient of one check."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_COMPARED = "not compared"

    @property
    def cell(self) -> str:
        """How tables and per-layer summaries show it: ``ok``, ``FAILED``, ``not compared``."""
        return {"passed": "ok", "failed": "FAILED"}.get(self.value, self.value)


class Verdict(_Word):
    """The verdict on a check or a layer: failures fail, warnings pass (unless strict)."""

    PASSED = "passed"
    WARNING = "warning"
    FAILED = "FAILED"
    ERROR = "ERROR"  # the layer could not be checked: import failure, timeout, crash


class Method(_Word):
    """A numeric method; ``NONE`` when no estimate was made."""

    AUTO = "auto"
    COMPLEX = "complex"
    CENTRAL = "central"
    RICHARDSON = "richardson"
    FORWARD = "forward"
    NONE = "none"


class ViolationKind(_Word):
    """What a :class:`~gradcheck.contract.Violation` is: a breach of the backward-pass
    contract (a failure) or a hazard that leaves every result right (a warning, which
    ``--strict`` fails). The value is the stable identifier tests and JSON show."""

    # the gradients backward returned
    GRADIENT_COUNT = "gradient_count"
    GRADIENT_TYPE = "gradient_type"
    GRADIENT_SHAPE = "gradient_shape"
    GRADIENT_NONFINITE = "gradient_nonfinite"
    # what forward or the loss returned
    FORWARD_RETURN = "forward_return"
    LOSS_RETURN = "loss_return"
    FORWARD_NONFINITE = "forward_nonfinite"
    # the user's code raised, in the stage named
    FORWARD_ERROR = "forward_error"
    BACKWARD_ERROR = "backward_error"
    LOSS_ERROR = "loss_error"
    # repeat calls that did not repeat, a backward not linear in dout
    NONDETERMINISTIC = "nondeterministic"  # a layer's cases, some of which did not repeat
    NONDETERMINISTIC_FORWARD = "nondeterministic_forward"
    NONDETERMINISTIC_BACKWARD = "nondeterministic_backward"
    NONDETERMINISTIC_LOSS = "nondeterministic_loss"
    NONLINEAR_BACKWARD = "nonlinear_backward"
    # the file handed in the checker's own reference layers
    REFERENCE_IMPORTED = "reference_imported"
    # torch code that makes tensors on a device written into it, not the inputs' device
    FIXED_DEVICE = "fixed_device"
    # warnings (see _WHY)
    DOUT_MUTATED = "dout_mutated"
    INPUT_MUTATED = "input_mutated"
    TEST_MODE_BACKWARD = "test_mode_backward"
    CONVENTION = "convention"
    LEGACY_NUMPY = "legacy_numpy"
    PYTHON2 = "python2"
    STRAY_IMPORT = "stray_import"
    BROADCAST_GRADIENT = "broadcast_gradient"
    PARAM_DTYPE = "param_dtype"
    DEVICE = "device"
    LOSS_SHAPE = "loss_shape"

    @classmethod
    def raised_in(cls, stage: str) -> ViolationKind:
        """The kind for user code that raised in ``stage`` (``"forward"``, ``"backward"``,
        ``"loss"``)."""
        return cls(f"{stage}_error")

    @property
    def is_warning(self) -> bool:
        """A hazard that leaves every result right: shown and explained, no failure."""
        return self in _WHY

    @property
    def why(self) -> str:
        """Why a warning matters although every result is right ("" for failures)."""
        return _WHY.get(self, "")

    @property
    def is_nondeterminism(self) -> bool:
        """Two calls with the same inputs that returned different results."""
        return self in (ViolationKind.NONDETERMINISTIC, ViolationKind.NONDETERMINISTIC_FORWARD,
                        ViolationKind.NONDETERMINISTIC_BACKWARD, ViolationKind.NONDETERMINISTIC_LOSS)

    @property
    def gradient_cell(self) -> str | None:
        """How a gradient's table cell names this kind when it is that gradient's reason
        (``shape``, ``type``, ``NaN``); None for kinds that are not about one gradient."""
        return _GRADIENT_CELL.get(self)


# Hazards that leave every result right: shown and explained, but no failure (``--strict``
# makes them failures). A write that does change a result is caught by the gradient check.
_WHY = {
    ViolationKind.DOUT_MUTATED: "a later layer that reuses dout (a residual connection, a gradient "
                                "that is accumulated or logged) sees the changed values",
    ViolationKind.INPUT_MUTATED: "any graph that reuses the array (a residual connection, the next "
                                 "layer reading the same activations, a training loop that keeps x) "
                                 "sees the changed values",
    ViolationKind.TEST_MODE_BACKWARD: "the course only calls backward after a train-mode forward; a "
                                      "test-mode cache is never differentiated there",
    ViolationKind.CONVENTION: "your code follows a convention other than the current course's; "
                              "code that calls it with the current convention gets other results",
    ViolationKind.LEGACY_NUMPY: "the code breaks on the NumPy that is installed today",
    ViolationKind.PYTHON2: "the code breaks on Python 3, which every course year since 2018 uses",
    ViolationKind.STRAY_IMPORT: "the file does not import where that package is missing (a grader's "
                                "machine, a classmate's), and with it nothing that imports the file",
    ViolationKind.BROADCAST_GRADIENT: "np.testing.assert_allclose, an optimizer that stacks or "
                                      "flattens gradients, and torch refuse a gradient whose shape "
                                      "is not its parameter's",
    ViolationKind.PARAM_DTYPE: "the course checks the model's gradients in the dtype it asks for, and "
                               "float32 parameters give relative errors far above that check's bar",
    ViolationKind.LOSS_SHAPE: "the course's docstring asks for the loss as a single float: code that "
                              "converts it (float(loss), '%f' % loss, an f-string, storing it in an "
                              "array) breaks on the NumPy installed today",
    ViolationKind.DEVICE: "the course runs the same code on a GPU (cuda in Colab), where a tensor "
                          "made on the CPU cannot be combined with the inputs and the layer raises",
}

_GRADIENT_CELL = {
    ViolationKind.GRADIENT_SHAPE: "shape",
    ViolationKind.GRADIENT_TYPE: "type",
    ViolationKind.GRADIENT_NONFINITE: "NaN",
}
