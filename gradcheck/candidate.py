"""Checking somebody's layer against a spec: forward against the reference, gradients
against numerics, over generated cases, shrunk to the smallest failing one.

Cases come in two phases: the *contract* phase draws the geometry the CS231n assignment
promises for these function names (a correct layer may assert it); the *general* phase
draws every valid geometry (uneven sizes, dilation, groups) and, in ``auto`` mode, skips
cases the candidate visibly does not support (its forward raises, or differs from the
reference), so that a layer that rejects or ignores them is not blamed, while a layer
whose forward handles them is held to its gradients there too.

A layer is judged by the contract its own course gives it: a backward the course never
calls (on a test-mode cache) may refuse, and a wrong one there is a warning; a convention
of another course year (what dropout's ``p`` means) passes when the layer follows it
consistently, with a warning unless the student's own docstring states it.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.contract import Violation
from gradcheck.determinism import case_size, explain_nondeterminism, sample_cases
from gradcheck.forward import ForwardResult, compare_forward
from gradcheck.kinds import ViolationKind
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome
from gradcheck.report import Report
from gradcheck.search import CaseFound, search_cases
from gradcheck.specs import Case, Convention, Spec
from gradcheck.suite import check_case

__all__ = ["ForwardResult", "Outcome", "check_candidate", "compare_forward"]


_Failure = tuple[Case, ForwardResult, "Report | None"]


@dataclass
class _State:
    outcome: Outcome
    deadline: float
    failure: _Failure | None = None
    uninformative: _Failure | None = None  # a failing case too degenerate to show the bug
    unsupported: str = ""
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Search:
    spec: Spec
    forward: Callable[..., Any]
    backward: Callable[..., Any] | None
    dtype: Any
    options: CheckOptions

    @property
    def seed(self) -> int:
        return self.options.seed

    def check(self, case: Case, **extra: Any) -> Report:
        return check_case(self.spec, case, self.forward, self.backward,
                          CheckOptions.build(self.options, **extra))


def _judge(search: _Search, state: _State, case: Case, *, tolerant: bool) -> _Failure | None:
    """Check one case; returns it as a failure, or None when the layer passes it."""
    spec = search.spec
    fwd = compare_forward(spec, case, search.forward, tolerant=tolerant)
    if fwd.status == "unsupported":
        state.outcome.n_skipped += 1
        state.unsupported = state.unsupported or f"{fwd.message} (case {case.describe()})"
        return None
    report = None
    case = fwd.case or case  # as the candidate saw it (after the course's earlier calls)
    if fwd.ran:
        # While hypothesis searches and shrinks, a verdict is enough; the smallest
        # failing case is localised once, at the end.
        report = search.check(case, localise=False)
        state.outcome.n_evaluations += report.n_evaluations
    state.outcome.n_cases += 1
    if report is not None and _borderline(report):
        # A quick directional verdict a few tolerances off can be the estimate's error (a
        # layer that computes in float32): the entry-by-entry check, with Richardson
        # re-estimates, decides. A real bug fails it too, or shows in another case.
        thorough = search.check(case)
        state.outcome.n_evaluations += thorough.n_evaluations
        report = thorough if thorough.passed else report
    if report is not None and spec.differentiated is not None and not spec.differentiated(case):
        _undifferentiated(search, state, case, report)
        report = None
    if report is not None:
        for warning in report.warnings:
            state.outcome.add_warning(warning, case.describe())
    if fwd.warning is not None:
        state.outcome.add_warning(fwd.warning, case.describe())
    if fwd.status == "ok" and (report is None or report.passed):
        return None
    return case, fwd, report


_BORDERLINE = 10.0


def _borderline(report: Report) -> bool:
    """Failed only along random directions, each within a few tolerances."""
    if report.passed or report.failures:
        return False
    failed = [g for g in report.gradients.values() if not g.passed]
    return all(g.status == "failed" and not g.mismatches and g.directional
               and all(d.passed or d.difference <= _BORDERLINE * d.tolerance for d in g.directional)
               for g in failed)


def _undifferentiated(search: _Search, state: _State, case: Case, report: Report) -> None:
    """A backward on a cache the course never differentiates: refusing is fine, wrong is a warning."""
    if report.passed:
        return
    names = search.backward.__name__ if search.backward is not None else "backward"
    refused = [v for v in report.failures if v.kind == ViolationKind.BACKWARD_ERROR]
    if refused:
        if not state.refused:
            state.refused.append(
                f"{names} refuses a cache from this case ({case.describe()}): {refused[0].message}. "
                "The course never calls it there, so this is no failure.")
        return
    wrong = [f"d{n}" for n in report.failed_gradients] + [v.kind for v in report.failures]
    state.outcome.add_warning(Violation(
        ViolationKind.TEST_MODE_BACKWARD,
        f"{names} gives wrong results on a cache from this case ({', '.join(wrong)}); the course "
        "only differentiates train mode, so the layer is judged by its forward here"),
        case.describe())


def _phase(search: _Search, state: _State, *, general: bool, tolerant: bool) -> None:
    spec = search.spec

    def body(case: Case) -> None:
        if state.failure is not None and time.monotonic() > state.deadline:
            return  # out of time for shrinking: keep the smallest failure found so far
        failure = _judge(search, state, case, tolerant=tolerant)
        if failure is None:
            return
        if spec.informative is not None and not spec.informative(case):
            # Too degenerate to show the bug (a statistic over two entries): shrink towards
            # an informative failing case instead, and fall back to this one.
            state.uninformative = state.uninformative or failure
            return
        state.failure = failure
        raise CaseFound

    search_cases(spec.cases(dtype=np.dtype(search.dtype), general=general), body,
                 examples=search.options.examples, seed=search.seed,
                 settled=lambda: state.failure is not None)


def _probe(search: _Search, state: _State) -> None:
    """The spec's fixed cases; a failure there stands unless the search finds a smaller one."""
    if search.spec.probes is None:
        return
    for case in search.spec.probes(np.dtype(search.dtype)):
        failure = _judge(search, state, case, tolerant=False)
        if failure is not None and state.uninformative is None:
            state.uninformative = failure


def _check_once(search: _Search, geometry: str, budget: float) -> Outcome:
    started = time.monotonic()
    spec = search.spec
    backward_name = getattr(search.backward, "__name__", None) if search.backward else None
    names = (getattr(search.forward, "__name__", spec.name), backward_name)
    outcome = Outcome(spec=spec.name, functions=names)
    state = _State(outcome, deadline=started + budget)
    phases = {
        "cs231n": [(False, False)],
        "general": [(True, False)],
        "auto": [(False, False)] + ([(True, True)] if spec.general else []),
    }[geometry]
    for general, tolerant in phases:
        if not general:
            _probe(search, state)
        _phase(search, state, general=general, tolerant=tolerant)
        if state.failure is not None:
            break
    state.failure = state.failure or state.uninformative
    outcome.gradients = {name: "ok" for name in spec.wrt}
    if state.unsupported and outcome.n_skipped:
        outcome.notes.append(
            f"{outcome.n_skipped} generated case(s) beyond the CS231n contract were skipped "
            f"because your layer does not handle them: {state.unsupported}"
        )
    outcome.notes += state.refused
    if state.failure is not None:
        _report_failure(search, outcome, state.failure)
    outcome.seconds = time.monotonic() - started
    return outcome


def _report_failure(search: _Search, outcome: Outcome, failure: _Failure) -> None:
    """Localise the smallest failing case and fill the outcome's verdicts from it."""
    case, fwd, report = failure
    # More cases, shared by the larger-case diagnosis and the determinism probe.
    samples = sample_cases(search.spec, search.seed + 1, search.dtype)
    if report is not None and not report.passed:
        search_report = report
        report = search.check(case)
        outcome.n_evaluations += report.n_evaluations
        if report.passed:
            # Failed in the search, passed when checked entry by entry: the verdict stands.
            # Whether the layer is nondeterministic is asked directly below.
            report = search_report
            outcome.notes.append(
                "this case failed the search's check but passed when checked again entry by "
                "entry: either your layer is not deterministic, or its error here is close to "
                "the tolerance (the failing check is shown)")
        if any(g.status == "failed" and g.n_checked < _FEW for g in report.gradients.values()):
            larger_case = _larger_failing_case(search, samples)
            if larger_case is not None:
                larger = search.check(larger_case)
                outcome.n_evaluations += larger.n_evaluations
                _borrow_diagnoses(report, larger, larger_case)
    if ViolationKind.NONDETERMINISTIC not in outcome.contract:
        note = explain_nondeterminism(search.spec, search.forward, search.backward, case, report, samples)
        if note is not None:
            outcome.contract.append(ViolationKind.NONDETERMINISTIC)
            outcome.notes += [note] if note else []
    outcome.failing_case = case.describe()
    outcome.forward = "ok" if fwd.status == "ok" else "FAILED"
    outcome.forward_message = fwd.message
    outcome.report = report
    if report is not None:
        outcome.report_text = str(report)
        outcome.take_verdicts(report)
    else:
        outcome.gradients = {name: "-" for name in search.spec.wrt}


def check_candidate(
    spec: Spec,
    forward: Callable[..., Any],
    backward: Callable[..., Any] | None = None,
    options: CheckOptions | None = None,
    **overrides: Any,
) -> Outcome:
    """Check a candidate pair (or loss) for ``spec`` over generated cases.

    ``options`` (:class:`~gradcheck.options.CheckOptions`, or its fields by name):
    ``examples`` cases per phase; ``geometry`` ``cs231n`` draws only the assignment's
    contract, ``general`` every valid geometry (all must work), ``auto`` both, skipping
    general cases the candidate visibly does not support; ``budget`` bounds, in seconds,
    the time spent shrinking a failure; the numeric options apply to every case.

    Where the spec knows several course years' conventions, the layer is held to the one
    its docstring states (else the current one); if it fails there but passes under
    another, it passes with a note, and with a ``convention`` warning when that one is
    neither the current course's nor stated in its docstring.
    """
    opts = CheckOptions.build(options, **overrides)

    def under(convention: Convention | None) -> Outcome:
        adapted = convention.apply(spec) if convention is not None else spec
        search = _Search(adapted, forward, backward, np.dtype(opts.dtype), opts)
        return _check_once(search, opts.geometry, opts.budget)

    if not spec.conventions:
        return under(None)
    current = spec.conventions[0]
    stated = stated_convention(spec, forward)
    first = stated or current
    outcome = under(first)
    if first is not current:
        outcome.notes.append(f"held to the convention your docstring states: {first.name}")
    if outcome.passed:
        return outcome
    for other in spec.conventions:
        if other is first:
            continue
        alternative = under(other)
        if alternative.passed:
            alternative.seconds += outcome.seconds
            _name_convention(alternative, other, current, stated)
            return alternative
    return outcome


def stated_convention(spec: Spec, forward: Callable[..., Any]) -> Convention | None:
    """The convention the forward's own docstring states, if exactly one is stated."""
    doc = " ".join((inspect.getdoc(forward) or "").split())
    found = [c for c in spec.conventions if re.search(c.stated, doc, flags=re.IGNORECASE)]
    return found[0] if len(found) == 1 else None


def _name_convention(outcome: Outcome, used: Convention, current: Convention,
                     stated: Convention | None) -> None:
    said = f"your docstring states {stated.name}" if stated is not None else "your docstring states none"
    text = (f"your layer follows another convention than expected ({said}): {used.name}; "
            f"checked under it, and it passes")
    if used is current:
        outcome.notes.append(f"{text}. That is the current course's convention.")
    elif not used.warn:
        outcome.notes.append(f"{text}. The current course's convention is {current.name}; "
                             "yours only rescales a hyper-parameter, so this is no hazard.")
    else:
        outcome.add_warning(Violation(
            ViolationKind.CONVENTION, f"{text}. The current course's convention is {current.name}."))


_FEW = 6


def _larger_failing_case(search: _Search, samples: list[Case]) -> Case | None:
    """The largest of ``samples`` (largest first) on which the candidate also fails."""
    spec = search.spec
    try:
        for case in samples:
            judged = spec.differentiated is None or spec.differentiated(case)
            if case_size(case) < 2 * _FEW or not judged:
                continue
            fwd = compare_forward(spec, case, search.forward, tolerant=True)
            if fwd.status == "ok" and not search.check(fwd.case or case, localise=False).passed:
                return fwd.case or case
    except Exception:
        return None
    return None


def _borrow_diagnoses(smallest: Report, larger: Report, larger_case: Case) -> None:
    """A shrunk case of one or two entries often cannot show a pattern (a mask, a factor);
    a larger failing case can. Its diagnosis is used where the smallest one has none or too
    few entries to tell, and says where it comes from."""
    for name, g in smallest.gradients.items():
        other = larger.gradients.get(name)
        if g.status != "failed" or other is None or not other.diagnosis:
            continue
        if g.diagnosis is None or g.n_checked < _FEW:
            g.diagnosis = f"{other.diagnosis} (diagnosed on a larger failing case: {larger_case.describe()})"
