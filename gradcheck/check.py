"""Orchestration: the public ``check_*`` and ``assert_*`` functions.

Each public function validates its options, reduces the calling convention to a
:class:`~gradcheck.adapters.Problem`, and hands it to :class:`_Checker`, whose ``run``
reads as the steps of a check: choose the numeric method (probing complex-step safety
and measuring round-off), estimate, compare, re-check suspects with Richardson
extrapolation, tell kinks from errors, diagnose.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gradcheck import numeric as num
from gradcheck import progress as _progress
from gradcheck import structure
from gradcheck.adapters import Problem, layer_problem, loss_problem
from gradcheck.compare import (
    Comparison,
    compare_direction,
    compare_entries,
    default_rtol,
    rms,
    summarise,
)
from gradcheck.contract import UserCodeError, Violation
from gradcheck.diagnose import diagnose_overlap, diagnose_values
from gradcheck.report import DirectionalCheck, GradientResult, Report, raise_or_warn

__all__ = [
    "MODES",
    "assert_gradients",
    "assert_loss_gradients",
    "check_layer",
    "check_loss",
    "check_problem",
]

MODES = ("full", "sample", "directional")
RECHECK_FIRST = 16
KINK_LIMIT = 64


def _validate_options(
    method: str,
    mode: str,
    seed: int,
    rtol: float | None,
    atol: float | None,
    samples: int,
    directions: int,
) -> None:
    if method not in num.METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(num.METHODS)}")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {', '.join(MODES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and (
            not isinstance(value, (int, float, np.floating)) or not value >= 0 or value == np.inf
        ):
            raise ValueError(f"{name}={value!r} must be a finite number >= 0, or None")
    for name, count in (("samples", samples), ("directions", directions)):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"{name}={count!r} must be a positive integer")


def check_layer(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    *args: Any,
    method: str = "auto",
    mode: str = "full",
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    wrt: Sequence[str | int] | None = None,
    samples: int = 10,
    directions: int = 2,
    grouped: bool = True,
    localise: bool = True,
    progress: bool | None = None,
) -> Report:
    """Check ``backward`` against numerical derivatives of ``forward``.

    Parameters
    ----------
    forward : callable
        ``forward(*args) -> (out, cache)``, or ``(out1, ..., outk, cache)``.
    backward : callable
        ``backward(dout, cache)`` (or ``backward(dout1, ..., doutk, cache)``) returning the
        gradients of the differentiable arguments, in argument order, as a tuple (or a
        single array when there is one).
    *args
        The inputs. Floating-point ndarrays are differentiable; integer arrays, dicts and
        scalars are passed through (dicts are copied for every call).
    method : {"auto", "complex", "central", "richardson", "forward"}
        Numeric method. ``auto`` uses the complex step when a probe shows the forward is
        complex-safe, central differences otherwise.
    mode : {"full", "sample", "directional"}
        Every coordinate; ``samples`` random coordinates per input plus one direction; or
        ``directions`` random directions per input. A mismatch in the cheaper modes is
        localised by a full check of that input. See Notes for which to pick.
    seed : int
        Seeds the upstream gradient, the directions and the samples.
    rtol, atol : float, optional
        Tolerances; by default ``rtol`` follows the layer's precision and ``atol`` is 0.
    wrt : sequence of str or int, optional
        Restrict the check to these arguments (names or positions). ``backward`` may return
        the gradients of just these, or of every floating-point array argument.
    grouped : bool
        In full mode, estimate many coordinates per forward evaluation where a probe shows
        they reach disjoint outputs (independent samples, element-wise maps, the spatial
        locality of a convolution). Every such shortcut is verified and guarded by a final
        directional check; ``False`` estimates one coordinate at a time.
    localise : bool
        In ``sample`` and ``directional`` modes, follow a mismatch with a full check of
        that input to locate the wrong entries (the report then lists them).
    progress : bool, optional
        Show the progress of a long check on stderr (which gradient, how many entries,
        time left). ``None`` (default): in a terminal or notebook, for a check that takes
        more than a few seconds; ``True``: always; ``False``: never.

    Returns
    -------
    Report
        ``report.passed`` is the verdict; ``print(report)`` explains it.

    Notes
    -----
    The checked scalar is ``L = sum_j <dout_j, out_j>`` for a random ``dout`` (never all
    ones), so one backward call gives every gradient and the numeric side needs only
    forward evaluations of ``L``, in float64 whatever the layer's dtype.

    Choosing a mode: ``full`` costs one forward evaluation per entry of every input (two
    with central differences; far fewer where entries can be grouped, as for independent
    samples), which is instant for the small inputs of a unit test but minutes for a
    layer of realistic size (a 64x3072 input with 3072x100 weights: about 6,000
    evaluations of the full layer). ``directional`` gives a verdict from a few forward
    evaluations whatever the size: pick it for large layers, whole models, or many
    checks in a loop. ``sample`` checks ``samples`` actual entries per input besides one
    direction: pick it when you want entry values in the report of a large check that
    passes. Both localise a failure with a full check of the failing input only (turn
    that off with ``localise=False`` when even one input is too large).
    """
    _validate_options(method, mode, seed, rtol, atol, samples, directions)
    _progress.check_progress(progress)
    if not callable(forward) or not callable(backward):
        raise TypeError("forward and backward must be callables")
    rng = checker_rng(seed)
    problem = layer_problem(forward, backward, args, wrt=wrt, rng=rng)
    return check_problem(problem, method=method, mode=mode, seed=seed, rtol=rtol, atol=atol,
                         samples=samples, directions=directions, rng=rng, grouped=grouped,
                         localise=localise, progress=progress)


def check_loss(
    loss_fn: Callable[..., Any],
    *args: Any,
    method: str = "auto",
    mode: str = "full",
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    samples: int = 10,
    directions: int = 2,
    localise: bool = True,
    progress: bool | None = None,
) -> Report:
    """Check ``loss_fn(x, ...) -> (loss, dx)``: ``dx`` against numerical ``d loss / dx``.

    Only the first argument is differentiated (``x`` for ``softmax_loss(x, y)``, ``W`` for
    ``svm_loss_naive(W, X, y, reg)``). Options (and when to pick which ``mode``) as in
    :func:`check_layer`.
    """
    _validate_options(method, mode, seed, rtol, atol, samples, directions)
    _progress.check_progress(progress)
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable")
    rng = checker_rng(seed)
    problem = loss_problem(loss_fn, args)
    return check_problem(problem, method=method, mode=mode, seed=seed, rtol=rtol, atol=atol,
                         samples=samples, directions=directions, rng=rng, localise=localise,
                         progress=progress)


def assert_gradients(*args: Any, strict: bool = False, **kwargs: Any) -> Report:
    """:func:`check_layer`, raising :class:`GradientMismatch` (an AssertionError) on failure.

    Warnings (a write into ``dout`` or an input) are emitted as
    :class:`~gradcheck.report.GradcheckWarning`; ``strict=True`` raises on them too.
    """
    __tracebackhide__ = True
    return raise_or_warn(check_layer(*args, **kwargs), strict=strict)


def assert_loss_gradients(*args: Any, strict: bool = False, **kwargs: Any) -> Report:
    """:func:`check_loss`, raising :class:`GradientMismatch` (an AssertionError) on failure
    (and warning as :func:`assert_gradients` does)."""
    __tracebackhide__ = True
    return raise_or_warn(check_loss(*args, **kwargs), strict=strict)


def check_problem(
    problem: Problem,
    *,
    method: str = "auto",
    mode: str = "full",
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    samples: int = 10,
    directions: int = 2,
    rng: np.random.Generator | None = None,
    grouped: bool = True,
    localise: bool = True,
    progress: bool | None = None,
) -> Report:
    """Run the numeric comparison on an already-built problem (``progress`` as in
    :func:`check_layer`)."""
    checker = _Checker(problem, method, mode, seed, rtol, atol, samples, directions,
                       rng if rng is not None else checker_rng(seed), grouped, localise)
    with _progress.reporting(progress, problem.label):
        return checker.run()


def checker_rng(seed: int) -> np.random.Generator:
    """The checker's own random stream (upstream gradients, directions, samples).

    Seeded apart from ``default_rng(seed)``, which test data is often drawn from: with the
    same stream, ``dout`` would equal the input ``x`` whenever their shapes agree, and an
    error proportional to ``dout - x`` would cancel.
    """
    return np.random.default_rng([seed, 0x67726164])


def _direction(rng: np.random.Generator, x: np.ndarray) -> npt.NDArray[np.float64]:
    """Random signs times magnitudes in [0.5, 1), scaled like ``x``: no tiny components."""
    v = rng.random(x.shape, dtype=np.float32)  # float32 draws: half the cost, any values do
    v -= 0.5
    v += np.copysign(np.float32(0.5), v)  # magnitudes in [0.5, 1): no tiny components
    scale = np.abs(x)
    np.maximum(scale, 1.0, out=scale)
    scale *= v
    return scale


class _Checker:
    def __init__(
        self,
        problem: Problem,
        method: str,
        mode: str,
        seed: int,
        rtol: float | None,
        atol: float | None,
        samples: int,
        directions: int,
        rng: np.random.Generator,
        grouped: bool = True,
        localise: bool = True,
    ) -> None:
        self.p = problem
        self.localise = localise
        self.requested = method
        self.method = method
        self.mode = mode
        self.seed = seed
        self.user_rtol = rtol
        self.atol = 0.0 if atol is None else float(atol)
        self.samples = samples
        self.directions = directions
        self.rng = rng
        self.method_note = ""
        self.notes: list[str] = []
        self.noise = 0.0
        self.noise_rel = num.EPS
        self.grouped = grouped
        self.structures: dict[int, structure.Structure | None] = {}
        self.grouped_inputs: set[int] = set()
        self.results = {
            name: GradientResult(name=name, shape=tuple(x.shape))
            for name, x in zip(problem.names, problem.base)
        }

    # -- the steps -----------------------------------------------------------------------

    def run(self) -> Report:
        p = self.p
        if p.fatal:
            self._mark_not_compared("the layer could not be run to the end (see above)")
            return self._report()
        for name, grad in zip(p.names, p.analytic):
            if grad is None:
                reason = next((v.message for v in p.violations if v.argument == name), "")
                self.results[name].status = "not compared"
                self.results[name].reason = reason
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with np.errstate(all="ignore"):
                    if self.mode == "directional" and self._fast_verdict():
                        return self._report()
                    if p.measure_round_off is not None:
                        p.measure_round_off()
                    self._choose_method()
                    for i, grad in enumerate(p.analytic):
                        if grad is not None:
                            self._check_input(i)
        except UserCodeError as err:
            p.violations.append(
                Violation(
                    "forward_error",
                    f"forward raised {type(err.original).__name__} at a perturbed input "
                    f"(while estimating numerical gradients): {err.original}",
                )
            )
            p.error_detail = err.user_traceback
            self._mark_not_compared("forward failed during the numerical estimate")
        return self._report()

    def _fast_verdict(self) -> bool:
        """One random direction over every input at once, by central differences.

        Agreement with the analytic ``sum_i <grad_i, v_i>`` is the verdict (two forward
        evaluations, no question of complex-step safety); any disagreement, and any
        contract breach, sends the check down the thorough path, which names the gradient
        and localises the error.
        """
        p = self.p
        failing = any(not v.is_warning for v in p.violations)
        if failing or any(g is None for g in p.analytic) or self.requested not in ("auto", "central"):
            return False
        direction = [_direction(self.rng, x) for x in p.base]
        h = float(np.cbrt(num.EPS))
        plus = float(np.real(p.objective([b + h * d for b, d in zip(p.base, direction)])))
        minus = float(np.real(p.objective([b - h * d for b, d in zip(p.base, direction)])))
        numeric = (plus - minus) / (2 * h)
        out_eps = p.numeric_eps if p.numeric_eps is not None else p.out_eps
        terms = [np.multiply(g, d, dtype=np.float64) for g, d in zip(p.analytic, direction)
                 if g is not None]
        analytic = float(sum(np.sum(t) for t in terms))
        spread = float(np.sqrt(sum(np.vdot(t, t) for t in terms)))
        rtol = self.user_rtol if self.user_rtol is not None else max(
            default_rtol(e) for e in p.grad_eps)
        tol = rtol * (abs(numeric) + spread) + 8 * out_eps * p.scale / h
        difference = abs(analytic - numeric)
        if not difference <= tol:
            return False
        check = DirectionalCheck(analytic, numeric, difference, tol, True)
        for name in p.names:
            result = self.results[name]
            result.rtol, result.atol = rtol, self.atol
            result.directional = [check]
            result.checked = "1 joint direction"
        self.method = "central"
        self.method_note = "directional verdict along one random direction through every input"
        return True

    def _choose_method(self) -> None:
        p = self.p
        direction = [_direction(self.rng, x) for x in p.base]
        p.objective(p.base)  # one float64 evaluation tells the precision the numerics work at
        out_eps = p.numeric_eps if p.numeric_eps is not None else p.out_eps
        floor = 4 * out_eps * p.scale
        noise_rel = max(num.EPS, 4 * out_eps)
        slope: float | None
        if self.requested in ("auto", "complex"):
            probe = num.probe_complex_safety(
                p.objective, p.base, direction, noise=floor, noise_rel=noise_rel
            )
            slope = float(probe.richardson.value[0])
            if probe.complex_safe:
                self.method = "complex"
                self.method_note = probe.reason
                # On a kink the complex step takes one branch and symmetric differences
                # average both: comparing them would read the kink as noise.
                slope = None if probe.reason else probe.complex_value
            else:
                if self.requested == "complex":
                    raise ValueError(
                        "method='complex' cannot be used: the forward is not complex-step "
                        f"safe ({probe.reason}); use method='auto' or 'central'"
                    )
                self.method = "central"
                self.method_note = f"complex step not usable: {probe.reason}"
        else:
            slope, _ = num.directional_derivative(
                p.objective, p.base, direction, "richardson", noise=floor, noise_rel=noise_rel)
        measured = num.measure_noise(p.objective, p.base, direction, slope=slope)
        self.noise = max(floor, measured, 1e-300)
        if p.scale > 0:
            self.noise_rel = max(num.EPS, self.noise / p.scale)
        else:  # all outputs zero (everything masked): no scale to be relative to
            self.noise_rel = noise_rel
        nondeterministic = any(v.kind.startswith("nondeterministic") for v in p.violations)
        if self.noise_rel > 64 * out_eps and self.noise_rel > 1e-12 and not nondeterministic:
            self.notes.append(
                f"the forward's round-off is {self.noise_rel:.1e} of its output scale, more "
                "than its dtype implies (does it compute in float32 internally?); steps and "
                "tolerances were widened to match"
            )

    def _rtol(self, i: int) -> float:
        if self.user_rtol is not None:
            return float(self.user_rtol)
        return default_rtol(max(self.p.grad_eps[i], self.noise_rel / 4))

    def _check_input(self, i: int) -> None:
        p = self.p
        result = self.results[p.names[i]]
        result.rtol, result.atol = self._rtol(i), self.atol
        analytic = np.asarray(p.analytic[i], dtype=np.float64).reshape(-1)
        size = analytic.size
        if self.mode == "full" or (size <= self.samples and self.mode == "sample"):
            self._check_entries(i, np.arange(size), result)
            result.checked = f"{size}/{size} entries"
            if i in self.grouped_inputs:
                result.checked += ", grouped"
                if result.status == "passed":
                    self._guard(i, result)
            return
        if self.mode == "sample":
            picked = np.sort(self.rng.choice(size, self.samples, replace=False))
            self._check_entries(i, picked, result)
            self._check_directions(i, 1, result)
            result.checked = f"{len(picked)}/{size} entries + 1 direction"
        else:
            result.n_checked = 0
            self._check_directions(i, self.directions, result)
            result.checked = f"{self.directions} direction{'s' if self.directions > 1 else ''}"
        if self.localise and (result.status == "failed" or any(not d.passed for d in result.directional)):
            self._localise(i, result)

    def _guard(self, i: int, result: GradientResult) -> None:
        """After a grouped estimate, one random direction over all coordinates must agree too;
        if it does not, the grouping is not trusted and the input is checked entry by entry."""
        self._check_directions(i, 1, result)
        if all(d.passed for d in result.directional):
            return
        self.notes.append(
            f"d{result.name}: the grouped estimate passed but a random-direction check did not; "
            "re-checked one coordinate at a time"
        )
        # The entry-wise verdict stands (a kink may bend the direction).
        self.results[result.name] = self._entrywise(i, result, grouped=False)

    def _entrywise(self, i: int, result: GradientResult, *, grouped: bool, label: str = "") -> GradientResult:
        """A fresh result for input ``i`` from a check of every entry."""
        fresh = GradientResult(name=result.name, shape=result.shape, rtol=result.rtol, atol=result.atol)
        size = int(np.prod(result.shape, dtype=int))
        self._check_entries(i, np.arange(size), fresh, grouped=grouped)
        fresh.checked = f"{size}/{size} entries{label}"
        return fresh

    def _localise(self, i: int, result: GradientResult) -> None:
        directional = result.directional
        fresh = self._entrywise(i, result, grouped=True, label=" (localised)")
        fresh.directional = directional
        fresh.escalated = True
        if fresh.status == "passed" and any(not d.passed for d in directional):
            self.notes.append(
                f"d{result.name}: a random-direction check disagreed slightly but every entry "
                "matched in the full check that followed; the entry-wise verdict stands"
            )
        self.results[result.name] = fresh

    def _estimate(self, i: int, indices: npt.NDArray[np.intp], method: str, *,
                  grouped: bool = False) -> num.Estimate:
        p = self.p
        full = len(indices) == p.base[i].size
        if full and grouped and self.grouped and p.evaluate is not None and method in ("complex", "central"):
            try:
                if i not in self.structures:
                    self.structures[i] = structure.detect(
                        p.evaluate, p.base, i, self.rng, complex_step=method == "complex")
                found = self.structures[i]
                if found is not None:
                    est = structure.estimate(p.evaluate, p.base, i, found, p.douts, method,
                                             noise=self.noise, noise_rel=self.noise_rel)
                    self.grouped_inputs.add(i)
                    return est
            except structure.StructureViolation as exc:
                self.structures[i] = None
                self.notes.append(f"d{p.names[i]}: detected structure did not hold ({exc}); "
                                  "estimated one coordinate at a time")
        return num.coordinate_derivatives(
            p.objective, p.base, i, indices, method, noise=self.noise, noise_rel=self.noise_rel)

    def _compare(self, i: int, indices: npt.NDArray[np.intp], est: num.Estimate, scale: float,
                 result: GradientResult) -> Comparison:
        analytic = np.asarray(self.p.analytic[i], dtype=np.float64).reshape(-1)
        return compare_entries(
            analytic, indices, est.value, est.error,
            rtol=result.rtol, atol=result.atol, scale=scale, noise=self.p.analytic_noise[i],
        )

    def _check_entries(self, i: int, indices: npt.NDArray[np.intp], result: GradientResult, *,
                       grouped: bool = True) -> None:
        p = self.p
        analytic = np.asarray(p.analytic[i], dtype=np.float64).reshape(-1)
        _progress.begin(f"d{p.names[i]}", len(indices))

        def estimate_and_compare(use_groups: bool) -> tuple[Comparison, float]:
            est = self._estimate(i, indices, self.method, grouped=use_groups)
            result.scale = max(rms(est.value), rms(analytic))
            return self._compare(i, indices, est, result.scale, result), result.scale

        comp, scale = estimate_and_compare(grouped)
        wrong = comp.wrong
        if np.any(wrong) and i in self.grouped_inputs and len(indices) == analytic.size:
            # The grouped estimate is the fast way to "all entries agree"; where anything
            # disagrees, every entry is estimated again on its own, so that the mismatches
            # reported are exactly those of a one-at-a-time check.
            self.grouped_inputs.discard(i)
            comp, scale = estimate_and_compare(False)
            wrong = comp.wrong
        if np.any(wrong) and self.method != "richardson":
            comp = self._recheck(i, comp, wrong, scale, result)
            wrong = comp.wrong
        kinks = np.zeros_like(wrong)
        if np.any(wrong):
            kinks = self._find_kinks(i, comp, wrong, scale)
            wrong = wrong & ~kinks
        summarise(result, comp, wrong, kinks)
        if np.any(wrong) and len(indices) == analytic.size:
            numeric_full = np.empty_like(analytic)
            numeric_full[comp.indices] = comp.numeric
            wrong_full = np.zeros(analytic.size, dtype=bool)
            wrong_full[comp.indices] = wrong
            result.diagnosis = diagnose_values(
                result.name,
                analytic.reshape(result.shape),
                numeric_full.reshape(result.shape),
                wrong_full.reshape(result.shape),
                batch_size=p.batch_size,
                batch_axis=p.batch_axis[i] if i < len(p.batch_axis) else False,
            )
            if result.diagnosis is None and p.evaluate is not None:
                result.diagnosis = self._overlap_diagnosis(i, result.name, wrong_full)

    def _overlap_diagnosis(self, i: int, name: str, wrong: npt.NDArray[np.bool_]) -> str | None:
        """Count the outputs a few wrong and a few right entries reach (one complex-step
        evaluation each) and see whether only the entries feeding several are wrong."""
        p = self.p
        assert p.evaluate is not None
        picked = [np.flatnonzero(wrong)[:6], np.flatnonzero(~wrong)[:6]]
        counts: list[list[int]] = [[], []]
        complex_step = self.method == "complex"
        work = [b.astype(np.complex128) if complex_step else b.copy() for b in p.base]
        reference = None if complex_step else p.evaluate(work)
        flat = work[i].reshape(-1)
        for side, indices in enumerate(picked):
            for k in indices:
                old = flat[k]
                # A complex step leaves unreached outputs exactly real; a small real step
                # leaves them bit-for-bit unchanged.
                flat[k] = old + (1j * num.COMPLEX_STEP if complex_step else 1e-4 * max(1.0, abs(old)))
                outputs = p.evaluate(work)
                changed = ([np.imag(y) != 0 for y in outputs] if reference is None
                           else [y != y0 for y, y0 in zip(outputs, reference)])
                counts[side].append(int(sum(np.count_nonzero(c) for c in changed)))
                flat[k] = old
        return diagnose_overlap(name, counts[0], counts[1])

    def _recheck(self, i: int, comp: Comparison, wrong: npt.NDArray[np.bool_], scale: float,
                 result: GradientResult) -> Comparison:
        """Confirm suspects with Richardson extrapolation before calling them failures."""
        suspects = np.flatnonzero(wrong)
        order = suspects[np.argsort(-(comp.difference[suspects] / comp.tolerance[suspects]))]
        first = order[:RECHECK_FIRST]
        rest = order[RECHECK_FIRST:]
        redo = self._rich(i, comp, first, scale, result)
        if np.all(redo.wrong) and len(rest):
            return _merge(comp, first, redo)
        comp = _merge(comp, first, redo)
        if len(rest):
            comp = _merge(comp, rest, self._rich(i, comp, rest, scale, result))
        return comp

    def _rich(self, i: int, comp: Comparison, positions: npt.NDArray[np.intp], scale: float,
              result: GradientResult) -> Comparison:
        est = self._estimate(i, comp.indices[positions], "richardson")
        redo = self._compare(i, comp.indices[positions], est, scale, result)
        if self.method == "complex":
            # Richardson only overrules the complex step where it disagrees with it.
            keep = redo.wrong
            return redo._replace(numeric=np.where(keep, comp.numeric[positions], redo.numeric),
                                 difference=np.where(keep, comp.difference[positions], redo.difference),
                                 tolerance=np.where(keep, comp.tolerance[positions], redo.tolerance))
        return redo

    def _find_kinks(self, i: int, comp: Comparison, wrong: npt.NDArray[np.bool_],
                    scale: float) -> npt.NDArray[np.bool_]:
        kinks = np.zeros_like(wrong)
        everyone = np.flatnonzero(wrong)
        # In batches: a wrong gradient stops after the first batch finds no kink; inputs
        # with many entries on kinks (a ReLU input with many zeros) are analysed in full.
        for start in range(0, len(everyone), KINK_LIMIT):
            batch = everyone[start:start + KINK_LIMIT]
            found = self._kink_batch(i, comp, batch, scale)
            kinks[batch] = found
            if not np.any(found):
                break
        return kinks

    def _kink_batch(self, i: int, comp: Comparison, suspects: npt.NDArray[np.intp],
                    scale: float) -> npt.NDArray[np.bool_]:
        p = self.p
        if p.evaluate is not None:
            # Per output: with several outputs kinked in one coordinate, each may take
            # either side, so the admissible range is wider than L's two slopes.
            size, lo, hi, h = num.one_sided_ranges(p.evaluate, p.douts, p.base, i, comp.indices[suspects])
        else:
            left, right, h = num.one_sided_slopes(p.objective, p.base, i, comp.indices[suspects])
            lo, hi = np.minimum(left, right), np.maximum(left, right)
            size = hi - lo
        slack = 1e-4 * (np.abs(lo) + np.abs(hi) + scale) + 4 * self.noise / h
        a = comp.analytic[suspects]
        return np.asarray((size > slack) & (a >= lo - slack) & (a <= hi + slack))

    def _check_directions(self, i: int, count: int, result: GradientResult) -> None:
        p = self.p
        analytic = np.asarray(p.analytic[i], dtype=np.float64)
        for _ in range(count):
            w = _direction(self.rng, p.base[i])
            direction: list[np.ndarray | None] = [None] * len(p.base)
            direction[i] = w
            value, error = num.directional_derivative(
                p.objective, p.base, direction, self.method,
                noise=self.noise, noise_rel=self.noise_rel,
            )
            result.directional.append(
                compare_direction(analytic, w, value, error, rtol=result.rtol,
                                  atol=result.atol, noise=p.analytic_noise[i])
            )
        if any(not d.passed for d in result.directional):
            result.status = "failed"

    # -- assembling ----------------------------------------------------------------------

    def _mark_not_compared(self, reason: str) -> None:
        for result in self.results.values():
            if result.status != "not compared":
                result.status = "not compared"
                result.reason = reason

    def _report(self) -> Report:
        p = self.p
        method = self.method if not p.fatal else "none"
        if method == "auto":
            method = "none"
        return Report(
            label=p.label,
            kind=p.kind,
            gradients=self.results,
            method=method,
            mode=self.mode,
            seed=self.seed,
            n_evaluations=p.n_evaluations,
            violations=list(p.violations),
            notes=self.notes,
            method_note=self.method_note,
            error_detail=p.error_detail,
        )


def _merge(comp: Comparison, positions: npt.NDArray[np.intp], redo: Comparison) -> Comparison:
    numeric = comp.numeric.copy()
    difference = comp.difference.copy()
    tolerance = comp.tolerance.copy()
    numeric[positions] = redo.numeric
    difference[positions] = redo.difference
    tolerance[positions] = redo.tolerance
    return comp._replace(numeric=numeric, difference=difference, tolerance=tolerance)
