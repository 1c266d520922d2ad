"""The ``gradcheck`` command.

``gradcheck check [PATH ...]`` finds CS231n-named layers, classifiers and models in each
file (or in the known files of a directory, see :mod:`gradcheck.packages`), checks every one
over generated cases (its forward against the reference, its gradients against numerics)
in a subprocess with a time limit, and prints a table of layers x gradients. Without a
PATH it checks the reference layers themselves. ``gradcheck list`` shows the known layers.
Exit status: 0 when everything passes, 1 when anything fails, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from gradcheck.candidate import Outcome, check_candidate
from gradcheck.discover import Match, describe_unmatched
from gradcheck.isolation import check_isolated, discover_isolated
from gradcheck.options import DEVICES, DTYPES, GEOMETRIES, METHODS, MODES, CheckOptions
from gradcheck.packages import KNOWN_FILES, find_files
from gradcheck.specs import all_specs, get_spec

__all__ = ["console_main", "main"]

DEFAULT_TIMEOUT = 120.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck",
        description="Check hand-written backward passes against numerical gradients.",
    )
    from gradcheck import __version__

    parser.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser("check", help="check layers over generated cases")
    check.add_argument("paths", nargs="*", metavar="PATH",
                       help="a .py file or module with CS231n-named layers, classifiers or models, "
                       "or an assignment folder / cs231n package (default: the reference layers)")
    check.add_argument("--layer", action="append", default=None, metavar="NAME",
                       help="check only this layer (spec or function name; repeatable)")
    check.add_argument("--examples", type=int, default=10, metavar="N",
                       help="generated cases per layer (default 10)")
    check.add_argument("--method", choices=METHODS, default="auto",
                       help="numerical derivatives: auto (default: complex step where the forward "
                       "allows it, else central differences), complex, central, richardson, forward")
    check.add_argument("--mode", choices=MODES, default="directional",
                       help="directional (default): a verdict from random directions per case, "
                       "the smallest failing case then checked entry by entry; full: every entry "
                       "of every case; sample: random entries")
    check.add_argument("--geometry", choices=GEOMETRIES, default="auto",
                       help="cs231n: only the assignment's geometry; general: every valid one; "
                       "auto (default): both, skipping general cases your layer rejects")
    check.add_argument("--seed", type=int, default=0, metavar="S",
                       help="seed of the generated cases and upstream gradients (default 0); the "
                       "same seed gives the same run")
    check.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"time limit per layer (default {DEFAULT_TIMEOUT:g})")
    check.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                       help="layers checked in parallel (default: up to 2)")
    check.add_argument("--dtype", choices=DTYPES, default="float64",
                       help="dtype of the generated inputs")
    check.add_argument("--device", choices=DEVICES, default="auto",
                       help="where torch layers run: auto (default: cuda when torch finds a GPU), "
                       "cpu, cuda (numpy layers ignore it)")
    check.add_argument("--json", metavar="OUT",
                       help="write machine-readable results to OUT (- for standard output; the "
                       "table then goes to standard error)")
    check.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    check.add_argument("--strict", action="store_true",
                       help="fail layers with warnings too (writes into dout or inputs, a wrong "
                       "backward in a mode the course never differentiates, another year's convention)")
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
        parser.print_help(out)
        return 2
    return _check(args, out)


def console_main() -> int:
    """Entry point of the ``gradcheck`` console script.

    hypothesis keeps its files in the user's cache directory, not in a ``.hypothesis/``
    of the student's folder. A closed pipe (``gradcheck check | head -1``) ends the
    command quietly, with the status a process killed by SIGPIPE has.
    """
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", _cache_directory())
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 128 + signal.SIGPIPE
    return status


def _cache_directory() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gradcheck", "hypothesis")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _list(out: TextIO) -> int:
    width = max(len(spec.name) for spec in all_specs()) + 2
    for spec in all_specs():
        out.write(f"{spec.name:<{width}}{spec.signature}\n")
        names = ", ".join(f for f, _ in spec.names)
        out.write(f"{'':<{width}}{spec.description}; student names: {names}\n")
    return 0


def _usage_error(message: str) -> int:
    sys.stderr.write(f"gradcheck: error: {message}\n")
    return 2


def _options(args: argparse.Namespace) -> CheckOptions:
    return CheckOptions.within(args.timeout, examples=args.examples, seed=args.seed,
                               geometry=args.geometry, method=args.method, mode=args.mode,
                               dtype=args.dtype, device=args.device)


def _check(args: argparse.Namespace, out: TextIO) -> int:
    json_out = out if args.json == "-" else None
    if json_out is not None:
        out = sys.stderr  # standard output carries the JSON alone
    for name, value, low in (("--examples", args.examples, 1), ("--jobs", args.jobs, 1),
                             ("--seed", args.seed, 0), ("--timeout", args.timeout, 1)):
        if value < low:
            return _usage_error(f"{name}={value:g} must be at least {low}")
    if args.device == "cuda":
        problem = _cuda_missing()
        if problem:
            return _usage_error(f"--device cuda: {problem}")
    options = _options(args)
    started = time.perf_counter()
    if not args.paths:
        status, results, unmatched = _check_reference(args, options, out)
    else:
        status, results, unmatched = _check_paths(args, options, out)
    if status is not None:
        return status
    failed = [r for r in results if not r.passes(args.strict)]
    _print_results(results, unmatched, args, out)
    warned = sum(1 for r in results if r.passed and r.warnings)
    with_warnings = f" ({warned} with warnings)" if warned else ""
    out.write(
        f"\n{len(results) - len(failed)} passed{with_warnings if not args.strict else ''}, "
        f"{len(failed)} failed in {time.perf_counter() - started:.1f} s\n"
    )
    if args.json:
        payload = {
            "passed": not failed,
            "strict": args.strict,
            "seed": args.seed,
            "layers": [_entry(r) for r in results],
            "unmatched": unmatched,
        }
        if json_out is not None:
            json.dump(payload, json_out, indent=2)
            json_out.write("\n")
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, indent=2)
    return 1 if failed else 0


def _cuda_missing() -> str:
    """Why ``--device cuda`` cannot be used here ("" when it can)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install torch)"
    if not torch.cuda.is_available():
        return ("torch finds no CUDA device here (torch.cuda.is_available() is False); "
                "use --device cpu or auto")
    return ""


def _entry(result: Outcome) -> dict[str, Any]:
    """A result's JSON entry, with the file it comes from when there is one."""
    entry = result.to_dict()
    if result.file:
        entry["file"] = result.file
    return entry


def _check_reference(
    args: argparse.Namespace, options: CheckOptions, out: TextIO
) -> tuple[int | None, list[Outcome], list[str]]:
    try:
        specs = [get_spec(name) for name in args.layer] if args.layer else all_specs()
    except KeyError as exc:
        return _usage_error(str(exc.args[0])), [], []
    if not args.quiet:
        out.write(
            f"gradcheck: {_plural(len(specs), 'reference layer')}, {args.examples} generated cases each "
            f"({args.dtype}, method {args.method}, mode {args.mode}, seed {args.seed})\n\n"
        )
    progress = _Progress(len(specs))
    results = []
    for spec in specs:
        progress.start(spec.name)
        results.append(check_candidate(spec, spec.forward, spec.backward, options, geometry="general"))
        progress.done(spec.name, results[-1])
    progress.clear()
    return None, results, []


def _check_paths(
    args: argparse.Namespace, options: CheckOptions, out: TextIO
) -> tuple[int | None, list[Outcome], list[str]]:
    found: list[tuple[str, Match]] = []
    unmatched: list[str] = []
    not_imported: list[Outcome] = []
    files: list[tuple[str, bool]] = []  # (path, found in a directory)
    for path in args.paths:
        if os.path.isdir(path):
            inside = find_files(path)
            if not inside:
                return _usage_error(f"{path} is a directory with no file gradcheck knows in it "
                                    f"(it looks for {', '.join(KNOWN_FILES)} and classifiers/*.py)"), [], []
            files += [(f, True) for f in inside]
        elif (path.endswith(".py") or os.path.sep in path) and not os.path.isfile(path):
            return _usage_error(f"no such file: {path}"), [], []
        else:
            files.append((path, False))
    for path, in_directory in files:
        discovery = discover_isolated(path, args.timeout)
        if isinstance(discovery, str) and in_directory:
            not_imported.append(_not_imported(path, discovery))
            continue
        if isinstance(discovery, str):
            sys.stderr.write(f"gradcheck: error: {discovery}\n")
            return 2, [], []
        wanted = set(args.layer or [])
        for match in discovery.matches:
            if not wanted or wanted & {match.spec, match.forward, match.backward}:
                found.append((path, match))
        unmatched += [f"{path}: {describe_unmatched(name)}" for name in discovery.unmatched]
    if not found and not not_imported:
        what = f" matching --layer {', '.join(args.layer)}" if args.layer else ""
        return _usage_error(
            f"no layers{what} found in {', '.join(args.paths)}; gradcheck recognises "
            "CS231n names such as affine_forward/affine_backward or softmax_loss "
            "(see `gradcheck list`)"
        ), [], []
    if not args.quiet:
        out.write(
            f"gradcheck: {_plural(len(found), 'layer')} in {', '.join(args.paths)}, {args.examples} "
            f"generated cases each (method {args.method}, mode {args.mode}, geometry "
            f"{args.geometry}, seed {args.seed}, timeout {args.timeout:g} s)\n\n"
        )
    progress = _Progress(len(found))

    def run(item: tuple[str, Match]) -> Outcome:
        path, match = item
        progress.start(match.spec)
        outcome = check_isolated(path, match, options, args.timeout)
        outcome.file = path
        progress.done(match.spec, outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = not_imported + list(pool.map(run, found))
    progress.clear()
    return None, results, unmatched


def _not_imported(path: str, reason: str) -> Outcome:
    """A file of a directory that could not be imported: an ERROR row, and the run goes on."""
    outcome = Outcome(spec=os.path.basename(path), functions=("-", None), kind="file",
                      forward="-", error=reason)
    outcome.file = path
    return outcome


def _print_results(results: list[Outcome], unmatched: list[str], args: argparse.Namespace,
                   out: TextIO) -> None:
    if not args.quiet:
        out.write(_table(results, args.strict) + "\n")
    for r in results:
        if r.passed:
            continue
        out.write(f"\n{'=' * 78}\n{r.spec} ({_functions(r)}): {r.verdict}\n")
        if r.error:
            out.write(f"  {r.error}\n")
            continue
        if r.failing_case:
            out.write(f"  smallest failing case: {r.failing_case}\n")
        if r.forward == "FAILED":
            out.write(f"  forward: {r.forward_message}\n")
        text = r.report_text
        if text:
            out.write("\n" + text + "\n")
        for note in r.notes:
            out.write(f"  note: {note}\n")
    for r in results:
        if r.passed and r.warnings:
            failing = " (fails under --strict)" if args.strict else ""
            out.write(f"\n{'=' * 78}\n{r.spec} ({_functions(r)}): passed with warnings{failing}\n")
            out.writelines(line + "\n" for line in r.warning_lines())
    if not args.quiet:
        notes = [(r, n) for r in results if r.passed for n in r.notes]
        for r, note in notes:
            out.write(f"\nnote on {r.spec}: {note}\n")
    if unmatched:
        out.write("\nNot checked (no matching layer):\n")
        out.writelines(f"  - {line}\n" for line in unmatched)


def _functions(r: Outcome) -> str:
    forward, backward = r.functions
    return forward if backward is None else f"{forward}/{backward}"


def _table(results: list[Outcome], strict: bool = False) -> str:
    files = _file_labels(results)
    rows = [(["file"] if files else []) + ["layer", "functions", "cases", "forward", "gradients",
                                           "time", "verdict"]]
    for r in results:
        grads = "  ".join(f"d{k}:{v}" for k, v in r.gradients.items())
        if r.contract:
            grads += "  contract:" + ",".join(r.contract)
        if r.warnings:
            grads += "  warning:" + ",".join(w["kind"] for w in r.warnings)
        cases = str(r.n_cases) + (f"+{r.n_skipped} skipped" if r.n_skipped else "")
        verdict: str = str(r.verdict)
        if verdict == "warning" and strict:
            verdict = "FAILED (strict)"
        elif verdict == "warning":
            verdict = "passed*"
        rows.append(([files[r.file]] if files else [])
                    + [r.spec, _functions(r), cases, r.forward, grads, f"{r.seconds:.1f}s", verdict])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def _file_labels(results: list[Outcome]) -> dict[str, str]:
    """Each result's file, shortened to what tells them apart; empty for a single file."""
    paths = sorted({r.file for r in results})
    if len(paths) < 2:
        return {}
    common = os.path.commonpath([os.path.abspath(p) for p in paths])
    return {p: os.path.relpath(os.path.abspath(p), common) for p in paths}


class _Progress:
    """Progress on stderr: ``checking conv (3/12 done)`` on a terminal; elsewhere (a log, a
    CI job) one line per finished layer, so that a slow layer is no silence."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = total
        self.finished = 0
        self.running: list[str] = []
        self._write: Callable[[str], Any] = self.stream.write

    def start(self, name: str) -> None:
        self.running.append(name)
        self._show()

    def done(self, name: str, outcome: Outcome | None = None) -> None:
        self.finished += 1
        if name in self.running:
            self.running.remove(name)
        if not self.enabled and outcome is not None:
            self._write(f"gradcheck: {name}: {outcome.verdict} ({self.finished}/{self.total} done, "
                        f"{outcome.seconds:.1f} s)\n")
            self.stream.flush()
        self._show()

    def _show(self) -> None:
        if self.enabled:
            running = f"checking {', '.join(self.running)} " if self.running else ""
            self._write(f"\r\033[K{running}({self.finished}/{self.total} done)")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self._write("\r\033[K")
            self.stream.flush()
