"""A candidate's forward against the reference forward, on one generated case.

A forward bug with a backward consistent with it passes any gradient check, so every case
first compares the candidate's outputs with the reference's. What a forward writes into
its parameter dict is output too: batch normalisation's running statistics decide what
the layer does at test time, so they are compared with the reference's after each call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.compare import default_rtol, rms
from gradcheck.contract import Violation, user_traceback
from gradcheck.kinds import ViolationKind
from gradcheck.specs import Case, Spec

__all__ = ["FORWARD_RTOL_FLOOR", "ForwardResult", "compare_forward", "describe_difference",
           "loss_shape_warning"]

FORWARD_RTOL_FLOOR = 1e-6


@dataclass
class ForwardResult:
    """The candidate's forward output against the reference on one case.

    ``case`` is the case as the candidate saw it (after the calls the course makes before
    it, see ``Spec.prepare``): the one to check its gradients on.
    """

    status: str  # "ok", "FAILED", "unsupported"
    message: str = ""
    ran: bool = True  # the forward returned outputs of the right structure
    case: Case | None = None
    warning: Violation | None = None  # a hazard in a right forward (a loss of shape (1, 1))


def _outputs(spec: Spec, result: Any) -> list[np.ndarray]:
    if spec.kind == "loss":
        return [np.asarray(result[0])]
    return [np.asarray(o) for o in result[:-1]]


def _rtol(want: np.ndarray) -> float:
    eps = float(np.finfo(want.dtype).eps) if np.issubdtype(want.dtype, np.floating) else 2.2e-16
    return max(FORWARD_RTOL_FLOOR, 10 * default_rtol(eps))


def _differs(got: np.ndarray, want: np.ndarray) -> str:
    """"" when ``got`` matches ``want``; else where and by how much it differs."""
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    rtol = _rtol(want)
    diff = np.abs(g - w)
    bad = ~(diff <= rtol * (np.abs(w) + rms(w)))
    if not np.any(bad):
        return ""
    k = np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), w.shape)
    index = tuple(int(i) for i in k)
    return (f"differs from the reference at {int(bad.sum())} of {w.size} entries; worst at index "
            f"{index}: yours {g[k]:.8g}, reference {w[k]:.8g} (rtol {rtol:.1g})")


def describe_difference(got: np.ndarray, want: np.ndarray) -> str:
    """"" when ``got`` matches ``want`` within the forward's tolerance; else where and by
    how much it differs (the same tolerance as a forward against the reference)."""
    return _differs(got, want)


def compare_forward(
    spec: Spec, case: Case, forward: Callable[..., Any], *, tolerant: bool
) -> ForwardResult:
    """Run the candidate's and the reference forward on copies of ``case.args`` and compare.

    With ``tolerant``, a candidate that raises, returns another output shape or other values
    is reported as ``unsupported`` (the geometry is outside what it handles) instead of failed.
    """
    verdict = _compare(spec, case, forward, tolerant=tolerant)
    if verdict.case is None:
        verdict.case = case
    return verdict


def _compare(spec: Spec, case: Case, forward: Callable[..., Any], *, tolerant: bool) -> ForwardResult:
    reference_case = case if spec.prepare is None else spec.prepare(copy.deepcopy(case), spec.forward)
    reference_args = copy.deepcopy(reference_case.args)
    reference = _outputs(spec, spec.forward(*reference_args))
    try:
        prepared = case if spec.prepare is None else spec.prepare(copy.deepcopy(case), forward)
        candidate_args = copy.deepcopy(prepared.args)
        result = forward(*candidate_args)
    except (Exception, SystemExit) as exc:
        who = "the loss" if spec.kind == "loss" else "forward"
        text = f"{who} raised {type(exc).__name__}: {exc}"
        if tolerant:
            return ForwardResult("unsupported", text, ran=False)
        trace = "\n".join("    " + line for line in user_traceback(exc).splitlines())
        return ForwardResult("FAILED", f"{text}\n{trace}", ran=False)
    expected = "(loss, dx)" if spec.kind == "loss" else "(out, cache)"
    if not isinstance(result, (tuple, list)) or len(result) != len(reference) + 1:
        return ForwardResult(
            "FAILED", f"forward must return {expected}; it returned {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""),
            ran=False,
        )
    outputs = _outputs(spec, result)
    if spec.forward_check is not None:
        shapes_match = all(g.shape == w.shape for g, w in zip(outputs, reference))
        if not shapes_match:
            text = f"forward output shapes {[g.shape for g in outputs]}; the reference has " \
                   f"{[w.shape for w in reference]}"
            return ForwardResult("unsupported" if tolerant else "FAILED", text, ran=False)
        problem = spec.forward_check(case, outputs)
        return ForwardResult("FAILED" if problem else "ok", problem or "", case=prepared)
    verdict = _compare_outputs(spec, case, forward, outputs, reference, tolerant=tolerant)
    verdict.case = prepared
    if verdict.status != "ok":
        return verdict
    problem = _compare_state(spec, prepared, candidate_args, reference_args)
    return ForwardResult("FAILED", problem, case=prepared) if problem else verdict


def loss_shape_warning(shape: tuple[int, ...]) -> Violation:
    """The warning for a right loss returned as an array of ``shape`` (one element) instead
    of a single number."""
    try:
        float(np.ones(shape))
        today = "is deprecated since NumPy 1.25"
    except TypeError:
        today = f"raises in NumPy {np.__version__}, installed here (deprecated since 1.25)"
    return Violation(
        ViolationKind.LOSS_SHAPE,
        f"the loss is an array of shape {shape}, not a single number; its value is right, and the "
        "course's tools read it as one with the NumPy of its year (the notebook's '%f' % loss, "
        "grad_check_sparse, eval_numerical_gradient), but converting an array of "
        f"{len(shape)} dimension{'s' if len(shape) != 1 else ''} to a number {today}. Return a "
        "scalar (np.sum(...) without keepdims, or loss.item())")


def _compare_outputs(
    spec: Spec, case: Case, forward: Callable[..., Any], outputs: list[np.ndarray],
    reference: list[np.ndarray], *, tolerant: bool,
) -> ForwardResult:
    warning = None
    for j, (got, want) in enumerate(zip(outputs, reference)):
        label = "loss" if spec.kind == "loss" else ("out" if len(reference) == 1 else f"output {j}")
        if got.dtype == object and got.shape == () and got.item() is None:
            return ForwardResult("FAILED", f"forward returned None as {label}: not implemented yet "
                                 "(the skeleton's placeholder is still there)", ran=False)
        if spec.kind == "loss" and want.shape == () and got.shape != () and got.size == 1:
            # a loss of shape (1, 1) is the same number to every tool of the course
            warning, got = loss_shape_warning(got.shape), got.reshape(())
        if got.shape != want.shape:
            text = f"forward {label} has shape {got.shape}; the reference has {want.shape}"
            # The gradients can still be checked against the candidate's own forward.
            if tolerant:
                return ForwardResult("unsupported", text, ran=False)
            return ForwardResult("FAILED", text)
        if not np.issubdtype(got.dtype, np.number) or np.iscomplexobj(got):
            return ForwardResult("FAILED", f"forward {label} has dtype {got.dtype}")
        differs = _differs(got, want)
        if differs:
            text = f"forward {label} {differs}"
            if tolerant and not _uses_general_settings(spec, case, forward, outputs):
                # Beyond the CS231n contract a layer that silently ignores a setting (groups,
                # padding of a pool) returns the right shape with other values: it does not
                # handle that geometry, which is no bug in what it was asked to do. A layer
                # whose output does depend on those settings is held to them.
                return ForwardResult("unsupported", text, ran=False)
            return ForwardResult(
                "FAILED",
                f"{text}. A forward bug with a backward consistent with it passes a gradient "
                "check, so the forward is compared first.",
            )
    return ForwardResult("ok", warning=warning)


def _compare_state(spec: Spec, case: Case, candidate_args: tuple[Any, ...],
                   reference_args: tuple[Any, ...]) -> str:
    """What the candidate wrote into its dict arguments against what the reference wrote."""
    for position, (mine, theirs, given) in enumerate(zip(candidate_args, reference_args, case.args)):
        if not isinstance(theirs, dict):
            continue
        mode = theirs.get("mode", "")
        label = "bn_param" if "running_mean" in theirs else f"argument {position}"
        for key in spec.state:
            if key not in theirs:
                continue
            want = np.asarray(theirs[key])
            got = mine.get(key) if isinstance(mine, dict) else None
            where = f"{label}[{key!r}] after a {mode}-mode forward" if mode else f"{label}[{key!r}]"
            if got is None:
                return (f"{where} was not written: the forward must store the updated running "
                        f"statistics in {label} (test mode normalises with them)")
            got = np.asarray(got)
            if got.size != want.size or not np.issubdtype(got.dtype, np.number) or np.iscomplexobj(got):
                return f"{where} has shape {got.shape} and dtype {got.dtype}; the reference has {want.shape}"
            differs = _differs(got.reshape(want.shape), want)
            if differs and key in given and np.array_equal(np.asarray(given[key]), got) and mode != "test":
                return (f"{where} still holds the value passed in: the forward must store the "
                        f"updated running statistics in {label} (test mode normalises with them)")
            if differs:
                return (f"{where} {differs}. The course updates running = momentum * running + "
                        "(1 - momentum) * the batch statistic (momentum default 0.9, the biased "
                        "variance), and leaves them alone in test mode.")
    return ""


def _uses_general_settings(
    spec: Spec, case: Case, forward: Callable[..., Any], outputs: list[np.ndarray]
) -> bool:
    """Whether the candidate's output changes when the general-only settings are removed."""
    if spec.without_general is None:
        return False
    stripped = spec.without_general(case)
    try:
        again = _outputs(spec, forward(*copy.deepcopy(stripped.args)))
    except (Exception, SystemExit):
        return True  # it cannot even run without them: it reads them
    return any(a.shape != o.shape or not np.array_equal(a, o) for a, o in zip(again, outputs))
