"""Batch normalisation's running statistics, judged the way the notebooks exercise them.

A warm-up train call (when the case has one) goes first with the same ``bn_param`` dict, so
the running statistics are the student's own, in whatever shape it keeps them. Expected
update: running = momentum * old + (1 - momentum) * batch statistic (momentum default 0.9,
BIASED batch variance). Test mode is compared with torch's eval-mode batch norm using the
statistics the student stored (the formula is judged there, the update in train mode).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from benchmarks.field import judge  # judge imports this module: attributes are read at call time
from benchmarks.field.cases import Case

KEYS = ("running_mean", "running_var")


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    return x.mean(axis=axes), x.var(axis=axes)


def _vector(value: Any, features: int) -> np.ndarray | None:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return a.reshape(features) if a.size == features else None


def warm_up(fwd: Any, case: Case, args: list[Any]) -> tuple[list[Any], dict[str, np.ndarray], dict[str, Any]]:
    """Run the warm-up batch; return (oracle args, expected stats before the main call, student's stats)."""
    param, features = args[3], case.args[0].shape[1]
    m = case.args[3].get("momentum", 0.9)
    before = {k: np.zeros(features) for k in KEYS}
    x0 = case.extra.get("warmup")
    if x0 is not None:
        param["mode"] = "train"
        judge.call(fwd, x0.copy(), args[1].copy(), args[2].copy(), param)
        param["mode"] = case.mode
        before = dict(zip(KEYS, ((1 - m) * s for s in _stats(x0))))
    stored = {k: copy.deepcopy(param.get(k)) for k in KEYS}
    oracle_param = dict(case.args[3])
    if case.mode == "test":
        for k in KEYS:
            vec = _vector(stored[k], features)
            oracle_param[k] = before[k] if vec is None else vec
    oracle_args = list(case.args)
    oracle_args[3] = oracle_param
    return oracle_args, before, stored


def judge_running(case: Case, after: Any, before: dict[str, np.ndarray] | None,
                  stored: dict[str, Any] | None) -> tuple[str, float]:
    """('ok' | 'wrong' | 'not_written', relative error) for what the main train call left in bn_param."""
    if before is None or stored is None:
        return "not_written", float("inf")
    if not isinstance(after, dict) or any(k not in after for k in KEYS):
        return "not_written", float("inf")
    unchanged = [stored[k] is not None and np.array_equal(np.asarray(after[k]), np.asarray(stored[k]))
                 for k in KEYS]
    if all(unchanged):
        return "not_written", float("inf")
    m = case.args[3].get("momentum", 0.9)
    features = case.args[0].shape[1]
    verdicts = []
    for k, stat in zip(KEYS, _stats(case.args[0])):
        got = _vector(after[k], features)
        want = m * before[k] + (1 - m) * stat
        verdicts.append(("wrong", float("inf")) if got is None
                        else judge.compare(got, want, judge.FORWARD_RTOL))
    worst = max(err for _, err in verdicts)
    return ("ok" if all(v == "ok" for v, _ in verdicts) else "wrong"), worst
