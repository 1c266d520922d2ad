"""Specificity soak: correct layers on many generated cases must never fail.

Every registered reference layer is checked entry by entry (``mode="full"``) on generated
cases in float64 and float32; the layers with kinks (ReLU-like activations, max pooling,
the hinge loss) are also checked on cases moved exactly onto their kinks and ties, where
the right verdict is "kink", not "failure". ``python -m benchmarks.soak --cases 10000``
runs the long form; the test suite runs a short one.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from gradcheck.report import Report
from gradcheck.specs import Case, Spec, all_specs
from gradcheck.suite import check_case

DTYPES = (np.float64, np.float32)


def _rng_for(case: Case) -> np.random.Generator:
    first = next(a for a in case.args if isinstance(a, np.ndarray))
    return np.random.default_rng(abs(hash(first.tobytes())) % 2**32)


def _zeros_in_x(case: Case) -> Case:
    """About a third of x exactly at the ReLU kink (0)."""
    x = case.args[0].copy()
    x[_rng_for(case).random(x.shape) < 0.35] = 0
    return Case((x, *case.args[1:]), {**case.geometry, "kinks": "x == 0"})


def _ties_in_pools(case: Case) -> Case:
    """Values snapped to a coarse grid: windows with tied maxima."""
    x = case.args[0]
    step = max(float(np.ptp(x)), 1e-3) / 3
    return Case((np.round(x / step) * step, *case.args[1:]), {**case.geometry, "kinks": "ties"})


def _hinges_at_zero(case: Case) -> Case:
    """Integer scores: margins x_j - x_y + 1 land exactly on the hinge for some j."""
    x, *rest = case.args
    ints = _rng_for(case).integers(-2, 3, size=x.shape).astype(x.dtype)
    return Case((ints, *rest), {**case.geometry, "kinks": "margins == 0"})


KINKS: dict[str, Callable[[Case], Case]] = {
    "relu": _zeros_in_x,
    "leaky_relu": _zeros_in_x,
    "max_pool": _ties_in_pools,
    "max_pool_reshape": _ties_in_pools,
    "svm_loss": _hinges_at_zero,
}


def _relu_backward_ge(dout: np.ndarray, cache: Any) -> np.ndarray:
    """The other subgradient at 0: the gradient flows where x >= 0."""
    return np.where(cache >= 0, dout, 0).astype(dout.dtype)


def _leaky_relu_backward_ge(dout: np.ndarray, cache: Any) -> np.ndarray:
    x, alpha = cache
    return np.where(x >= 0, dout, alpha * dout).astype(dout.dtype)


def _max_pool_backward_last(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Ties routed to the LAST maximum of each window (the reference takes the first).

    Flipping both spatial axes maps the window grid onto itself when there is no padding and
    the windows tile the input exactly; the reference's "first" maximum of the flipped
    image is then the last one of the original. Other geometries keep the first.
    """
    from reference_layers import max_pool_backward_naive

    x, param = cache
    ph, pw, stride = param["pool_height"], param["pool_width"], param["stride"]
    symmetric = (not param.get("pad", 0) and (x.shape[2] - ph) % stride == 0
                 and (x.shape[3] - pw) % stride == 0)
    if not symmetric:
        return max_pool_backward_naive(dout, cache)
    flipped = (x[:, :, ::-1, ::-1].copy(), param)
    return max_pool_backward_naive(dout[:, :, ::-1, ::-1].copy(), flipped)[:, :, ::-1, ::-1].copy()


def _svm_loss_ge(x: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
    """The other subgradient: margins exactly at 0 count as active."""
    from reference_layers import svm_loss

    loss, _ = svm_loss(x, y)
    n = len(x)
    rows = np.arange(n)
    margins = x - x[rows, y][:, None] + 1.0
    active = margins >= 0
    active[rows, y] = False
    dx = active.astype(x.dtype)
    dx[rows, y] = -active.sum(axis=1)
    return loss, dx / n


# Correct layers that take the other one-sided slope at a kink: on kink cases their
# analytic values differ from the numeric ones, and the verdict must say "kink".
ALTERNATES: dict[str, tuple[Callable[..., Any] | None, Callable[..., Any] | None]] = {
    "relu": (None, _relu_backward_ge),
    "leaky_relu": (None, _leaky_relu_backward_ge),
    "max_pool": (None, _max_pool_backward_last),
    "svm_loss": (_svm_loss_ge, None),
}


@dataclass
class Summary:
    cases: int = 0
    kink_cases: int = 0
    kink_entries: int = 0
    failures: list[tuple[str, str, str, Report]] = field(default_factory=list)
    seconds: float = 0.0
    per_spec: dict[str, int] = field(default_factory=dict)


def combos() -> list[tuple[Spec, Any, bool]]:
    """(spec, dtype, on kinks) for every spec and dtype, plus the kink variants."""
    out = []
    for spec in all_specs():
        for dtype in DTYPES:
            out.append((spec, dtype, False))
            if spec.name in KINKS:
                out.append((spec, dtype, True))
    return out


def soak_one(spec: Spec, dtype: Any, kinks: bool, examples: int, seed: int, summary: Summary) -> None:
    """Check ``examples`` generated cases of one combination, recording every failure."""
    strategy = spec.cases(dtype=np.dtype(dtype), general=True)
    if kinks:
        strategy = strategy.map(KINKS[spec.name])

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def body(case: Case) -> None:
        pairs: list[tuple[Callable[..., Any] | None, Callable[..., Any] | None]] = [(None, None)]
        if kinks and spec.name in ALTERNATES:
            pairs.append(ALTERNATES[spec.name])
        for forward, backward in pairs:
            report = check_case(spec, case, forward, backward, mode="full")
            summary.cases += 1
            summary.per_spec[spec.name] = summary.per_spec.get(spec.name, 0) + 1
            if kinks:
                summary.kink_cases += 1
            summary.kink_entries += sum(len(g.kinks) for g in report.gradients.values())
            if not report.passed:
                summary.failures.append((spec.name, np.dtype(dtype).name, case.describe(), report))

    body()


def run(total: int, seed: int = 0) -> Summary:
    """About ``total`` cases spread evenly over every (spec, dtype, kinks) combination."""
    summary = Summary()
    started = time.perf_counter()
    todo = combos()
    per = max(1, -(-total // len(todo)))
    for spec, dtype, kinks in todo:
        soak_one(spec, dtype, kinks, per, seed, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    summary = run(args.cases, args.seed)
    print(f"{summary.cases} cases ({summary.kink_cases} on kinks or ties) over "
          f"{len(summary.per_spec)} layers, float64 and float32, in {summary.seconds:.0f} s: "
          f"{len(summary.failures)} false alarms; {summary.kink_entries} entries reported as kinks")
    for name, dtype, case, report in summary.failures:
        print(f"\n{name} ({dtype}) {case}\n{report}")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
