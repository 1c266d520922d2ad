"""The ``gradcheck`` command.

``gradcheck check`` checks every reference layer over generated cases and prints a table
of layers x gradients; ``gradcheck list`` shows the known layers and their signatures.
Exit status: 0 when everything passes, 1 when anything fails, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from gradcheck.check import MODES
from gradcheck.numeric import METHODS
from gradcheck.specs import Spec, all_specs, get_spec
from gradcheck.suite import SpecResult, check_spec

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck",
        description="Check hand-written backward passes against numerical gradients.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser("check", help="check layers over generated cases")
    check.add_argument("--layer", action="append", default=None, metavar="NAME",
                       help="check only this layer (repeatable)")
    check.add_argument("--examples", type=int, default=10, metavar="N",
                       help="generated cases per layer (default 10)")
    check.add_argument("--method", choices=METHODS, default="auto")
    check.add_argument("--mode", choices=MODES, default="full")
    check.add_argument("--seed", type=int, default=0, metavar="S")
    check.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    check.add_argument("--json", metavar="OUT", help="write machine-readable results to OUT")
    check.add_argument("--quiet", action="store_true", help="print only the summary line")
    sub.add_parser("list", help="list the known layers and their signatures")
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = stdout or sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    if args.command == "list":
        return _list(out)
    if args.command is None:
        args = parser.parse_args(["check", *(argv or [])])
    return _check(args, out)


def _list(out: TextIO) -> int:
    for spec in all_specs():
        out.write(f"{spec.name:<16} {spec.signature}\n")
        if spec.description:
            out.write(f"{'':<16} {spec.description}\n")
    return 0


def _usage_error(message: str) -> int:
    sys.stderr.write(f"gradcheck: error: {message}\n")
    return 2


def _check(args: argparse.Namespace, out: TextIO) -> int:
    if args.examples < 1:
        return _usage_error(f"--examples={args.examples} must be at least 1")
    if args.seed < 0:
        return _usage_error(f"--seed={args.seed} must be >= 0")
    try:
        specs = [get_spec(name) for name in args.layer] if args.layer else all_specs()
    except KeyError as exc:
        return _usage_error(str(exc.args[0]))
    dtype = np.dtype(args.dtype)
    if not args.quiet:
        out.write(
            f"gradcheck: {len(specs)} reference layers, {args.examples} generated cases each "
            f"({args.dtype}, method {args.method}, mode {args.mode}, seed {args.seed})\n\n"
        )
    started = time.perf_counter()
    results: list[tuple[SpecResult, float]] = []
    for spec in specs:
        t0 = time.perf_counter()
        result = check_spec(spec, examples=args.examples, seed=args.seed, dtype=dtype,
                            method=args.method, mode=args.mode)
        results.append((result, time.perf_counter() - t0))
    failed = [r for r, _ in results if not r.passed]
    if not args.quiet:
        out.write(_table(results) + "\n")
        for r in failed:
            assert r.failure is not None and r.failing_case is not None
            out.write(f"\n{r.spec.name}: smallest failing case: {r.failing_case.describe()}\n")
            out.write(str(r.failure) + "\n")
    elapsed = time.perf_counter() - started
    out.write(
        f"\n{len(results) - len(failed)} passed, {len(failed)} failed "
        f"in {elapsed:.1f} s\n"
    )
    if args.json:
        _write_json(args.json, results)
    return 1 if failed else 0


def _table(results: list[tuple[SpecResult, float]]) -> str:
    rows = [["layer", "cases", "gradients", "method", "time", "verdict"]]
    for r, seconds in results:
        grads = "  ".join(f"d{k}:{v}" for k, v in r.gradient_verdicts().items())
        rows.append([
            r.spec.name,
            str(r.n_cases),
            grads,
            ",".join(sorted(r.methods)),
            f"{seconds:.2f}s",
            "passed" if r.passed else "FAILED",
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def _spec_dict(spec: Spec, result: SpecResult) -> dict[str, Any]:
    return {
        "name": spec.name,
        "passed": result.passed,
        "cases": result.n_cases,
        "forward_evaluations": result.n_evaluations,
        "gradients": result.gradient_verdicts(),
        "failing_case": result.failing_case.describe() if result.failing_case else None,
        "report": result.failure.to_dict() if result.failure else None,
    }


def _write_json(path: str, results: list[tuple[SpecResult, float]]) -> None:
    payload = {
        "passed": all(r.passed for r, _ in results),
        "layers": [_spec_dict(r.spec, r) | {"seconds": round(t, 3)} for r, t in results],
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
