"""Checking a layer over generated cases: hypothesis draws, gradcheck judges.

:func:`check_spec` runs a spec's case strategy through hypothesis (so a failure is shrunk
to its smallest geometry) and checks every case with :func:`~gradcheck.check_layer` or
:func:`~gradcheck.check_loss`. It works for the reference pair and for anybody's pair
that follows the same signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.check import check_layer, check_loss
from gradcheck.kinds import Status
from gradcheck.options import CheckOptions
from gradcheck.report import Report
from gradcheck.search import CaseFound, search_cases
from gradcheck.specs import Case, Spec

__all__ = ["SpecResult", "check_case", "check_spec"]


@dataclass
class SpecResult:
    """The outcome of checking one layer over generated cases."""

    spec: Spec
    n_cases: int = 0
    n_evaluations: int = 0
    failure: Report | None = None
    failing_case: Case | None = None
    methods: set[str] = field(default_factory=set)

    @property
    def passed(self) -> bool:
        return self.failure is None

    def gradient_verdicts(self) -> dict[str, str]:
        """``{"x": "ok", "w": "FAILED", ...}`` over every case checked."""
        verdicts = {name: "ok" for name in self.spec.wrt}
        if self.failure is not None:
            for name, g in self.failure.gradients.items():
                verdicts[name] = Status(g.status).cell if g.status != Status.NOT_COMPARED else "FAILED"
            if self.failure.failures and all(v == "ok" for v in verdicts.values()):
                for v in self.failure.failures:
                    if v.argument in verdicts:
                        verdicts[v.argument] = "FAILED"
        return verdicts


def check_case(
    spec: Spec,
    case: Case,
    forward: Callable[..., Any] | None = None,
    backward: Callable[..., Any] | None = None,
    options: CheckOptions | None = None,
    **overrides: Any,
) -> Report:
    """Check one case of ``spec`` with the given pair (the reference pair by default)."""
    options = CheckOptions.build(options, **overrides)
    forward = forward or spec.forward
    if spec.kind == "loss":
        report = check_loss(forward, *case.args, options=options)
    else:
        backward = backward or spec.backward
        if backward is None:
            raise ValueError(f"spec {spec.name!r} is a layer and needs a backward function")
        report = check_layer(forward, backward, *case.args, wrt=spec.wrt, options=options)
    report.label = spec.name
    return report


def check_spec(
    spec: Spec,
    forward: Callable[..., Any] | None = None,
    backward: Callable[..., Any] | None = None,
    options: CheckOptions | None = None,
    *,
    general: bool = True,
    shrink: bool = True,
    **overrides: Any,
) -> SpecResult:
    """Check ``spec``'s layer (or the given pair) over ``options.examples`` generated cases.

    Stops at the first failing case, which hypothesis shrinks to the smallest geometry
    that still fails; ``result.failure`` is that case's report.
    """
    opts = CheckOptions.build(options, **overrides)
    result = SpecResult(spec)

    def run(case: Case) -> None:
        if spec.prepare is not None:
            case = spec.prepare(case, forward or spec.forward)
        report = check_case(spec, case, forward, backward, opts)
        result.n_cases += 1
        result.n_evaluations += report.n_evaluations
        result.methods.add(report.method)
        if not report.passed:
            result.failure, result.failing_case = report, case
            raise CaseFound

    # The failure recorded last (the smallest) is the one reported, also when nondeterministic
    # code fails once and passes on replay.
    search_cases(spec.cases(dtype=np.dtype(opts.dtype), general=general), run,
                 examples=opts.examples, seed=opts.seed, shrink=shrink,
                 settled=lambda: result.failure is not None)
    return result
