"""The steps of one check, on a :class:`~gradcheck.adapters.Problem`.

``Checker.run`` reads as the steps: the joint-direction verdict where it applies; else the
deferred contract calls, the numeric method (probing complex-step safety and measuring
round-off), estimates, comparisons, suspects re-checked with Richardson extrapolation,
kinks told from errors, diagnoses.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

from gradcheck import numeric as num
from gradcheck import progress, structure
from gradcheck.adapters import Problem
from gradcheck.compare import (
    Comparison,
    compare_direction,
    compare_entries,
    default_rtol,
    rms,
    summarise,
)
from gradcheck.contract import UserCodeError, Violation
from gradcheck.diagnose import diagnose_values
from gradcheck.draws import Draws, checker_rng, direction
from gradcheck.kinds import Method, Status, ViolationKind
from gradcheck.options import CheckOptions
from gradcheck.probe import choose_method, joint_verdict, overlap_diagnosis
from gradcheck.report import GradientResult, Report

__all__ = ["Checker", "checker_rng"]

RECHECK_FIRST = 16
DIRECTIONS = 2  # per input in directional mode, when the joint direction did not settle it
KINK_LIMIT = 64


class Checker:
    """One check of one problem; ``run()`` returns its report."""

    def __init__(self, problem: Problem, options: CheckOptions, rng: Draws) -> None:
        self.p = problem
        self.opts = options
        self.method = options.method
        self.atol = 0.0 if options.atol is None else float(options.atol)
        self.rng = rng
        self.method_note = ""
        self.notes: list[str] = []
        self.noise = 0.0
        self.noise_rel = num.EPS
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
        self._mark_missing()
        try:
            if self.opts.mode == "directional":
                with np.errstate(all="ignore"):
                    if self._fast_verdict():
                        return self._report()
            # The thorough path calls the forward many times: its warnings are silenced, and
            # a long check shows its progress.
            with warnings.catch_warnings(), np.errstate(all="ignore"), \
                    progress.reporting(self.opts.progress, p.label):
                warnings.simplefilter("ignore")
                self._thorough()
        except UserCodeError as err:
            p.violations.append(
                Violation(
                    ViolationKind.FORWARD_ERROR,
                    f"forward raised {type(err.original).__name__} at a perturbed input "
                    f"(while estimating numerical gradients): {err.original}",
                )
            )
            p.error_detail = err.user_traceback
            self._mark_not_compared("forward failed during the numerical estimate")
        return self._report()

    def _thorough(self) -> None:
        """The deferred contract calls, then every gradient compared as the mode asks."""
        p = self.p
        p.complete()
        if p.fatal:
            self._mark_not_compared("the layer could not be run to the end (see above)")
            return
        if p.measure_round_off is not None:
            p.measure_round_off()
        self._choose_method()
        for i, grad in enumerate(p.analytic):
            if grad is not None:
                self._check_input(i)

    def _fast_verdict(self) -> bool:
        """The joint-direction verdict, where it applies; True when it settles the check.

        Any disagreement, and any contract breach, sends the check down the thorough path,
        which makes the deferred contract calls, names the gradient and localises the error.
        """
        p = self.p
        failing = any(not v.is_warning for v in p.violations)
        if (failing or any(g is None for g in p.analytic) or self.opts.directions is not None
                or self.opts.method not in ("auto", "central")):
            return False
        rtol = self.opts.rtol if self.opts.rtol is not None else max(default_rtol(e) for e in p.grad_eps)
        check = joint_verdict(p, self.rng, rtol)
        if not check.passed:
            return False
        for name in p.names:
            result = self.results[name]
            result.rtol, result.atol = rtol, self.atol
            result.directional = [check]
            result.checked = "1 joint direction"
        self.method = Method.CENTRAL
        self.method_note = "directional verdict along one random direction through every input"
        return True

    def _choose_method(self) -> None:
        choice = choose_method(self.p, self.opts.method, self.rng)
        self.method, self.method_note = choice.method, choice.note
        self.noise, self.noise_rel = choice.noise, choice.noise_rel
        if choice.warning:
            self.notes.append(choice.warning)

    def _rtol(self, i: int) -> float:
        if self.opts.rtol is not None:
            return float(self.opts.rtol)
        return default_rtol(max(self.p.grad_eps[i], self.noise_rel / 4))

    def _check_input(self, i: int) -> None:
        p = self.p
        result = self.results[p.names[i]]
        result.rtol, result.atol = self._rtol(i), self.atol
        analytic = np.asarray(p.analytic[i], dtype=np.float64).reshape(-1)
        size = analytic.size
        if self.opts.mode == "full" or (size <= self.opts.samples and self.opts.mode == "sample"):
            self._check_entries(i, np.arange(size), result)
            result.checked = f"{size}/{size} entries"
            if i in self.grouped_inputs:
                result.checked += ", grouped"
                if result.status == Status.PASSED:
                    self._guard(i, result)
            return
        if self.opts.mode == "sample":
            picked = np.sort(self.rng.generator.choice(size, self.opts.samples, replace=False))
            self._check_entries(i, picked, result)
            self._check_directions(i, 1, result)
            result.checked = f"{len(picked)}/{size} entries + 1 direction"
        else:
            result.n_checked = 0
            count = self.opts.directions or DIRECTIONS
            self._check_directions(i, count, result)
            result.checked = f"{count} direction{'s' if count > 1 else ''}"
        missed = result.status == Status.FAILED or any(not d.passed for d in result.directional)
        if self.opts.localise and missed:
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
        if fresh.status == Status.PASSED and any(not d.passed for d in directional):
            self.notes.append(
                f"d{result.name}: a random-direction check disagreed slightly but every entry "
                "matched in the full check that followed; the entry-wise verdict stands"
            )
        self.results[result.name] = fresh

    def _estimate(self, i: int, indices: npt.NDArray[np.intp], method: str, *,
                  grouped: bool = False) -> num.Estimate:
        p = self.p
        full = len(indices) == p.base[i].size
        groupable = grouped and self.opts.grouped and method in ("complex", "central")
        if full and groupable and p.evaluate is not None:
            try:
                if i not in self.structures:
                    self.structures[i] = structure.detect(
                        p.evaluate, p.base, i, self.rng.generator, complex_step=method == "complex")
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
        progress.begin(f"d{p.names[i]}", len(indices))

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
                result.diagnosis = overlap_diagnosis(p, i, result.name, wrong_full, self.method == "complex")

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
            w = direction(self.rng, p.base[i])
            along: list[np.ndarray | None] = [None] * len(p.base)
            along[i] = w
            value, error = num.directional_derivative(
                p.objective, p.base, along, self.method,
                noise=self.noise, noise_rel=self.noise_rel,
            )
            result.directional.append(
                compare_direction(analytic, w, value, error, rtol=result.rtol,
                                  atol=result.atol, noise=p.analytic_noise[i])
            )
        if any(not d.passed for d in result.directional):
            result.status = Status.FAILED

    # -- assembling ----------------------------------------------------------------------

    def _mark_missing(self) -> None:
        for name, grad in zip(self.p.names, self.p.analytic):
            if grad is None:
                reason = next((v.message for v in self.p.violations if v.argument == name), "")
                self.results[name].status = Status.NOT_COMPARED
                self.results[name].reason = reason

    def _mark_not_compared(self, reason: str) -> None:
        for result in self.results.values():
            if result.status != Status.NOT_COMPARED:
                result.status = Status.NOT_COMPARED
                result.reason = reason

    def _report(self) -> Report:
        p = self.p
        method = self.method if not p.fatal else Method.NONE
        if method == "auto":
            method = Method.NONE
        return Report(
            label=p.label,
            kind=p.kind,
            gradients=self.results,
            method=method,
            mode=self.opts.mode,
            seed=self.opts.seed,
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
