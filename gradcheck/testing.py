"""Assertions for users' own tests; the ``gradcheck`` pytest fixture is a :class:`Checker`.

>>> def test_my_conv(gradcheck):
...     gradcheck.like("conv", my_conv_forward, my_conv_backward)
...     gradcheck.layer(my_affine_forward, my_affine_backward, x, w, b)

Every method raises :class:`~gradcheck.GradientMismatch` (an ``AssertionError``) with the
full report when the check fails, and returns the result otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from gradcheck.candidate import Outcome, check_candidate
from gradcheck.check import check_layer, check_loss
from gradcheck.options import CheckOptions
from gradcheck.report import GradcheckWarning, Report, raise_or_warn
from gradcheck.specs import get_spec

__all__ = ["Checker", "LayerMismatch", "check_like", "describe_outcome", "warn_or_raise"]


class LayerMismatch(AssertionError):
    """A candidate layer failed on generated cases; the message says where and why."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(describe_outcome(outcome))


def describe_outcome(outcome: Outcome) -> str:
    """An outcome as text: the smallest failing case, the forward verdict, the report, warnings."""
    verdict = {"warning": "passed with warnings"}.get(outcome.verdict, outcome.verdict)
    lines = [f"{outcome.spec} ({outcome.functions[0]}): {verdict}", *outcome.finding_lines()]
    lines += outcome.warning_lines()
    lines += [f"  note: {note}" for note in outcome.notes]
    return "\n".join(lines)


def warn_or_raise(outcome: Outcome, *, strict: bool = False, path: str | None = None) -> Outcome:
    """Raise :class:`LayerMismatch` for a failure (or, with ``strict``, a warning); emit a
    :class:`~gradcheck.report.GradcheckWarning` for a pass with warnings (attributed to the
    checked file ``path`` when given)."""
    __tracebackhide__ = True
    if not outcome.passes(strict):
        raise LayerMismatch(outcome)
    if outcome.warnings:
        warning = GradcheckWarning(describe_outcome(outcome))
        if path is None:
            warnings.warn(warning, stacklevel=3)
        else:
            warnings.warn_explicit(warning, GradcheckWarning, path, 1)
    return outcome


def check_like(
    name: str,
    forward: Callable[..., Any],
    backward: Callable[..., Any] | None = None,
    options: CheckOptions | None = None,
    **overrides: Any,
) -> Outcome:
    """Check a pair (or a loss) against the spec ``name`` over its generated cases.

    ``options`` is a :class:`~gradcheck.options.CheckOptions` (or its fields by name:
    ``examples``, ``seed``, ``geometry``, ``method``, ``mode``, ``dtype``, ...).
    """
    spec = get_spec(name)
    if spec.kind == "layer" and backward is None:
        raise TypeError(f"{name!r} is a layer: pass its backward function too")
    return check_candidate(spec, forward, backward, options, **overrides)


class Checker:
    """What the ``gradchecker`` fixture provides; ``options`` (and ``defaults``, any
    :class:`~gradcheck.options.CheckOptions` field by name) apply to every call.

    Failures raise; warnings are emitted as :class:`~gradcheck.report.GradcheckWarning`
    (``strict=True`` raises on them too).
    """

    def __init__(self, options: CheckOptions | None = None, *, strict: bool = False,
                 **defaults: Any) -> None:
        self.strict = strict
        self.options = CheckOptions.build(options, **defaults)

    def layer(self, forward: Callable[..., Any], backward: Callable[..., Any], *args: Any,
              **options: Any) -> Report:
        """Check one call of a pair, like :func:`gradcheck.assert_gradients`."""
        __tracebackhide__ = True
        report = check_layer(forward, backward, *args, options=self.options, **options)
        return raise_or_warn(report, strict=self.strict)

    def loss(self, loss_fn: Callable[..., Any], *args: Any, **options: Any) -> Report:
        """Check one call of a loss, like :func:`gradcheck.assert_loss_gradients`."""
        __tracebackhide__ = True
        report = check_loss(loss_fn, *args, options=self.options, **options)
        return raise_or_warn(report, strict=self.strict)

    def like(self, name: str, forward: Callable[..., Any],
             backward: Callable[..., Any] | None = None, **options: Any) -> Outcome:
        """Check a pair over the generated cases of the spec ``name``."""
        __tracebackhide__ = True
        outcome = check_like(name, forward, backward, self.options, **options)
        return warn_or_raise(outcome, strict=self.strict)
