"""Run a student's layer on one case and compare it with the torch oracle.

The forward is compared at rtol 1e-6 relative to the oracle output's largest magnitude; each
gradient at rtol 1e-5 relative to the largest magnitude of torch's autograd gradient of
L = sum(dout * out) (the loss itself for losses), with a random dout. The student always gets
deep copies of the inputs; the cache passed to its backward is the one its own forward made.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmarks.field import judge_bn
from benchmarks.field.cases import Case
from benchmarks.field.specs import Spec

FORWARD_RTOL = 1e-6
GRAD_RTOL = 1e-5


class Unimplemented(Exception):
    """The student's function is still the skeleton (NotImplementedError, None outputs)."""


@dataclass
class CaseResult:
    forward: str = "ok"
    forward_err: float = 0.0
    grads: dict[str, str] = field(default_factory=dict)
    grad_errs: dict[str, float] = field(default_factory=dict)
    running_stats: str | None = None
    running_err: float = 0.0
    reshape_ok: set[str] = field(default_factory=set)  # 'shape' gradients whose values match reshaped
    convention: str | None = None
    info: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def exc_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def call(fn: Any, *args: Any) -> Any:
    """Call student code with the global RNGs reset, so that labels are deterministic."""
    np.random.seed(0)  # noqa: NPY002 - student code draws from the legacy global RNG
    random.seed(0)
    try:
        return fn(*args)
    except NotImplementedError as exc:
        raise Unimplemented(f"{getattr(fn, '__name__', fn)} raises NotImplementedError") from exc


def compare(got: Any, want: np.ndarray, rtol: float) -> tuple[str, float]:
    """('ok' | 'wrong' | 'shape' | 'nan', max error relative to max |want|)."""
    try:
        a = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return "shape", float("inf")
    if want.ndim == 0 and a.size == 1:
        a = a.reshape(())
    if a.shape != want.shape:
        return "shape", float("inf")
    if not np.all(np.isfinite(a)):
        return "nan", float("inf")
    if a.size == 0:
        return "ok", 0.0
    scale = max(float(np.max(np.abs(want))), 1e-12)
    err = float(np.max(np.abs(a - want))) / scale
    return ("ok" if err <= rtol else "wrong"), err


def _mutated(now: list[Any], before: list[Any]) -> bool:
    for a, b in zip(now, before):
        if isinstance(b, np.ndarray) and (
            not isinstance(a, np.ndarray) or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True)
        ):
            return True
    return False


def _leaves(case: Case) -> tuple[list[Any], list[torch.Tensor]]:
    targs = list(case.args)
    leaves = []
    for i in case.diff:
        leaf = torch.tensor(np.asarray(case.args[i], dtype=np.float64), requires_grad=True)
        targs[i] = leaf
        leaves.append(leaf)
    return targs, leaves


def _autograd(total: torch.Tensor, leaves: list[torch.Tensor]) -> list[np.ndarray]:
    grads = torch.autograd.grad(total, leaves, allow_unused=True)
    return [np.zeros(tuple(leaf.shape)) if g is None else g.detach().numpy()
            for g, leaf in zip(grads, leaves)]


def _split_forward(raw: Any, n_out: int) -> tuple[list[Any], Any]:
    if raw is None:
        raise Unimplemented("forward returns None")
    if not isinstance(raw, (tuple, list)) or len(raw) != n_out + 1:
        kind = f"a {len(raw)}-tuple" if isinstance(raw, (tuple, list)) else type(raw).__name__
        raise TypeError(f"forward returned {kind}, expected {n_out} output(s) and a cache")
    outs = list(raw[:n_out])
    if all(o is None for o in outs):
        raise Unimplemented("forward returns None outputs (skeleton placeholder)")
    return outs, raw[n_out]


def _split_grads(raw: Any, names: tuple[str, ...]) -> list[Any]:
    if raw is None:
        raise Unimplemented("backward returns None")
    if len(names) == 1:
        if isinstance(raw, (tuple, list)) and len(raw) == 1:
            raw = raw[0]
        if raw is None:
            raise Unimplemented("backward returns None")
        return [raw]
    if not isinstance(raw, (tuple, list)) or len(raw) != len(names):
        kind = f"a {len(raw)}-tuple" if isinstance(raw, (tuple, list)) else type(raw).__name__
        raise TypeError(f"backward returned {kind}, expected {len(names)} gradients")
    if all(g is None for g in raw):
        raise Unimplemented("backward returns None gradients (skeleton placeholder)")
    return list(raw)


def _judge_grads(res: CaseResult, names: tuple[str, ...], got: list[Any], want: list[np.ndarray]) -> None:
    for name, g, w in zip(names, got, want):
        status, err = ("none", float("inf")) if g is None else compare(g, w, GRAD_RTOL)
        res.grads[name] = status
        res.grad_errs[name] = err
        if status == "shape":
            res.notes.append(f"{name} shape {np.shape(g)} expected {w.shape}")
            try:
                if np.size(g) == w.size and compare(np.reshape(g, w.shape), w, GRAD_RTOL)[0] == "ok":
                    res.reshape_ok.add(name)
            except (TypeError, ValueError):
                pass


def _crash_grads(res: CaseResult, names: tuple[str, ...], exc: BaseException) -> None:
    for name in names:
        res.grads[name] = "crash"
    res.notes.append(f"backward: {exc_text(exc)}")


def run_case(spec: Spec, fwd: Any, bwd: Any, case: Case, rng: np.random.Generator) -> CaseResult:
    """One case of a layer or loss (not dropout). Raises Unimplemented for skeleton code."""
    res = CaseResult()
    args = copy.deepcopy(case.args)
    oracle_args, before, stored = list(case.args), None, None
    try:
        if spec.running_stats:
            oracle_args, before, stored = judge_bn.warm_up(fwd, case, args)
        raw = call(fwd, *args)
        if spec.kind != "loss":
            outs, cache = _split_forward(raw, spec.n_out)
        else:
            outs, cache = _split_forward(raw, 1)
    except Unimplemented:
        raise
    except Exception as exc:
        res.forward = "crash"
        res.notes.append(f"forward: {exc_text(exc)}")
        return res
    if _mutated(args, case.args):
        res.info.add("mutates_input")
    targs, leaves = _leaves(case)
    if spec.running_stats:
        targs[3] = oracle_args[3]
    touts = spec.oracle(*targs, *case.extra.get("oracle_args", ()))
    want = [t.detach().numpy() for t in touts]
    verdicts = [compare(o, w, FORWARD_RTOL) for o, w in zip(outs, want)]
    bad = [v for v in verdicts if v[0] != "ok"]
    res.forward, res.forward_err = bad[0] if bad else ("ok", max(v[1] for v in verdicts))
    if spec.running_stats and case.mode == "train":
        res.running_stats, res.running_err = judge_bn.judge_running(case, args[3], before, stored)
    if spec.kind == "loss":
        _judge_grads(res, spec.grads, [cache], _autograd(touts[0], leaves))
        return res
    if case.mode == "test" and spec.running_stats:
        return res  # the course never runs a backward on a test-mode cache
    douts = [rng.standard_normal(w.shape) for w in want]
    total = sum((torch.as_tensor(d) * t).sum() for d, t in zip(douts, touts))
    tgrads = _autograd(total, leaves)
    given = copy.deepcopy(douts)
    try:
        got = _split_grads(call(bwd, *given, cache), spec.grads)
    except Unimplemented:
        raise
    except Exception as exc:
        _crash_grads(res, spec.grads, exc)
        return res
    if _mutated(given, douts):
        res.info.add("mutates_dout")
    if _mutated(args, case.args):
        res.info.add("mutates_input")
    _judge_grads(res, spec.grads, got, tgrads)
    return res
