"""Label one layer of one student file: six cases, then one verdict with culprits and details."""

from __future__ import annotations

import functools
import inspect
import re
import zlib
from typing import Any

import numpy as np

from benchmarks.field import cases
from benchmarks.field.judge import CaseResult, Unimplemented, run_case
from benchmarks.field.judge_dropout import docstring_convention, run_dropout_case
from benchmarks.field.notebook import would_catch
from benchmarks.field.specs import Spec

N_CASES = 6
Results = list[tuple[int, cases.Case, CaseResult]]
GAMMA_SHAPES = {"1C11": "(1, C, 1, 1)", "C": "(C,)"}


def case_seed(file_id: str, layer: str, i: int) -> int:
    return zlib.crc32(f"{file_id}/{layer}/{i}".encode())


def groupnorm_gamma_shape(fn: Any) -> str:
    """'C' when the student's docstring states gamma of shape (C,), else '1C11' (the default)."""
    doc = re.sub(r"\s+", " ", fn.__doc__ or "")
    return "C" if re.search(r"gamma:?[^.;]*?\(\s*C\s*,?\s*\)", doc) else "1C11"


def leaky_alpha(fn: Any) -> tuple[float, bool]:
    """(alpha, pass it explicitly): the student's default alpha if it has one, else 0.01."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return 0.01, False
    if len(params) < 2:
        return 0.01, False
    default = params[1].default
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return float(default), False
    return 0.01, default is inspect.Parameter.empty


def _leaky_maker(fwd: Any) -> Any:
    alpha, explicit = leaky_alpha(fwd)

    def make(rng: np.random.Generator, i: int) -> cases.Case:
        case = cases.kinked(rng, i)
        case.extra["oracle_args"] = (alpha,)
        if explicit:
            case.args.append(alpha)
        return case

    return make


def _bad(res: CaseResult) -> bool:
    return res.forward != "ok" or res.running_stats not in (None, "ok") or any(
        v != "ok" for v in res.grads.values())


def _first_bad(results: Results, get: Any) -> str:
    for _, _, res in results:
        status = get(res)
        if status not in (None, "ok"):
            return status
    return "ok"


def _fails_only_on(results: Results) -> str | None:
    """A tag every failing case has while some case without it exists (and so passed)."""
    failing = [c.extra.get("tags", set()) for _, c, r in results if _bad(r)]
    if not failing:
        return None
    for tag in sorted(set.intersection(*failing)):
        if any(tag not in c.extra.get("tags", set()) for _, c, _ in results):
            return tag
    return None


def summarise(spec: Spec, results: Results) -> dict[str, Any]:
    label: dict[str, Any] = {"forward": _first_bad(results, lambda r: r.forward)}
    culprits = [] if label["forward"] == "ok" else ["forward"]
    grads = {}
    ran = any(res.grads for _, _, res in results)
    for name in spec.grads if ran else ():
        grads[name] = _first_bad([t for t in results if name in t[2].grads], lambda r, n=name: r.grads[n])
        if grads[name] != "ok":
            culprits.append(name)
    label["gradients"] = grads
    if spec.running_stats:
        label["running_stats"] = _first_bad(results, lambda r: r.running_stats)
        if label["running_stats"] != "ok":
            culprits.append("running_stats")
    label["info"] = sorted(set().union(*(r.info for _, _, r in results)))
    statuses = [label["forward"], *grads.values(), label.get("running_stats", "ok")]
    label["culprits"] = culprits
    label["correct"] = not culprits
    label["status"] = "correct" if not culprits else ("crash" if "crash" in statuses else "wrong")
    if culprits:
        _describe_failure(label, results)
    return label


def _describe_failure(label: dict[str, Any], results: Results) -> None:
    label["details"] = _details(results)
    label["failing_cases"] = [i for i, _, r in results if _bad(r)]
    errs = [r.forward_err for _, _, r in results if r.forward == "wrong"]
    if errs:
        label["forward_error"] = float(f"{max(errs):.2g}")
    grad_errs = {}
    for name, status in label["gradients"].items():
        finite = [r.grad_errs[name] for _, _, r in results if r.grads.get(name) == "wrong"]
        if status == "wrong" and finite:
            grad_errs[name] = float(f"{max(finite):.2g}")
    if grad_errs:
        label["gradient_errors"] = grad_errs
    stats = [r.running_err for _, _, r in results
             if r.running_stats == "wrong" and np.isfinite(r.running_err)]
    if stats:
        label["running_stats_error"] = float(f"{max(stats):.2g}")
    tag = _fails_only_on(results)
    if tag:
        label["fails_only_on"] = tag
    shape_bad = [n for n, v in label["gradients"].items() if v == "shape"]
    if shape_bad and set(label["culprits"]) == set(shape_bad) and all(
        n in r.reshape_ok for _, _, r in results for n in shape_bad if r.grads.get(n) == "shape"
    ):
        label["values_match_after_reshape"] = True


def _details(results: Results) -> str:
    for i, case, res in results:
        parts = []
        if res.forward != "ok":
            parts.append(f"forward {res.forward} (err {res.forward_err:.2g})")
        if res.running_stats not in (None, "ok"):
            parts.append(f"running_stats {res.running_stats}")
        for name, status in res.grads.items():
            if status != "ok":
                parts.append(f"{name} {status} (err {res.grad_errs.get(name, float('inf')):.2g})")
        if parts:
            mode = f" {case.mode}" if case.mode and "mode=" not in case.geometry else ""
            return f"case {i} {case.geometry}{mode}: " + "; ".join(parts + res.notes)[:400]
    return ""


def _skeleton_crash(fwd: Any, res: CaseResult) -> bool:
    """A first-case crash on a None placeholder in a function that still has the skeleton's ``pass``."""
    if res.forward != "crash" or "'NoneType' object" not in " ".join(res.notes):
        return False
    try:
        source = inspect.getsource(fwd)
    except (OSError, TypeError):
        return False
    return re.search(r"^\s*pass\s*$", source, re.M) is not None


def _run(spec: Spec, fwd: Any, bwd: Any, file_id: str, make: Any) -> dict[str, Any]:
    results: Results = []
    for i in range(N_CASES):
        seed = case_seed(file_id, spec.name, i)
        case = make(np.random.default_rng(seed), i)
        rng = np.random.default_rng(seed + 1)
        try:
            if spec.kind == "dropout":
                res = run_dropout_case(fwd, bwd, case, rng)
            else:
                res = run_case(spec, fwd, bwd, case, rng)
        except Unimplemented as exc:
            if i == 0:
                return {"status": "unimplemented", "details": str(exc)}
            res = CaseResult(forward="none", notes=[f"{exc} in this mode"])
        if i == 0 and _skeleton_crash(fwd, res):
            return {"status": "unimplemented", "details": "skeleton placeholder: " + " ".join(res.notes)}
        results.append((i, case, res))
    label = summarise(spec, results)
    if spec.kind == "dropout":
        _dropout_convention(label, fwd, results)
    return label


def label_layer(spec: Spec, fwd: Any, bwd: Any, file_id: str) -> dict[str, Any]:
    label = _label_layer(spec, fwd, bwd, file_id)
    if label["status"] in ("wrong", "crash"):
        caught = would_catch(spec, fwd, bwd, label.get("gamma_shape", ""))
        if caught is not None:
            label["notebook_would_catch"] = caught
    return label


def _label_layer(spec: Spec, fwd: Any, bwd: Any, file_id: str) -> dict[str, Any]:
    if spec.name == "leaky_relu":
        return _run(spec, fwd, bwd, file_id, _leaky_maker(fwd))
    if spec.name != "spatial_groupnorm":
        return _run(spec, fwd, bwd, file_id, spec.make)
    # gamma (1, C, 1, 1) is what the notebooks pass; some docstrings state (C,). Either is the contract.
    stated = groupnorm_gamma_shape(fwd)
    order = [stated, *(s for s in GAMMA_SHAPES if s != stated)]
    labels = []
    for shape in order:
        label = _run(spec, fwd, bwd, file_id, functools.partial(cases.groupnorm, gamma_shape=shape))
        label["gamma_shape"] = GAMMA_SHAPES[shape]
        if label["status"] in ("correct", "unimplemented"):
            return label
        labels.append(label)
    return min(labels, key=lambda lab: len(lab.get("culprits", ())))


def _dropout_convention(label: dict[str, Any], fwd: Any, results: Results) -> None:
    seen = {res.convention for _, _, res in results if res.convention is not None}
    convention = seen.pop() if len(seen) == 1 else ("neither" if seen else "unknown")
    stated = docstring_convention(fwd)
    label["convention"] = convention
    label["docstring_convention"] = stated
    if convention in ("keep", "drop") and stated not in ("unstated", convention):
        label["info"] = sorted({*label["info"], "convention_differs_from_docstring"})
