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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from gradcheck import grade_cli
from gradcheck.candidate import Outcome, check_candidate
from gradcheck.cli_output import Progress, print_results
from gradcheck.discover import Discovery, Match
from gradcheck.isolation import check_isolated, discover_isolated
from gradcheck.options import DEVICES, DTYPES, GEOMETRIES, METHODS, MODES, CheckOptions
from gradcheck.packages import KNOWN_FILES, find_files
from gradcheck.specs import all_specs, get_spec
from gradcheck.suggest import Candidate, closest, describe, layer_like, no_layers_message, parse_mapping

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
                       help="check only this layer (a layer or function name); or, as "
                       "LAYER=FORWARD,BACKWARD (LAYER=LOSS for a loss), check functions of your "
                       "own naming as that layer, besides the others (repeatable)")
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
    check.add_argument("-s", "--show-output", action="store_true",
                       help="show everything each layer printed, for every layer (by default the "
                       "last lines of what failing layers printed)")
    check.add_argument("--strict", action="store_true",
                       help="fail layers with warnings too (writes into dout or inputs, a wrong "
                       "backward in a mode the course never differentiates, another year's convention)")
    sub.add_parser("list", help="list the known layers and their signatures")
    grade_cli.add_parser(sub)
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
    if args.command == "grade":
        return grade_cli.run(args, out)
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
    # progress off: the command shows progress by layer
    return CheckOptions.within(args.timeout, examples=args.examples, seed=args.seed,
                               geometry=args.geometry, method=args.method, mode=args.mode,
                               dtype=args.dtype, device=args.device, progress=False)


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
    print_results(results, unmatched, out, quiet=args.quiet, strict=args.strict,
                  show_output=args.show_output)
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
    mapping = next((value for value in args.layer or [] if "=" in value), None)
    if mapping is not None:
        return _usage_error(f"--layer {mapping}: name a PATH whose functions these are "
                            "(without PATH, the reference layers are checked)"), [], []
    try:
        specs = [get_spec(name) for name in args.layer] if args.layer else all_specs()
    except KeyError as exc:
        return _usage_error(str(exc.args[0])), [], []
    if not args.quiet:
        out.write(
            f"gradcheck: {_plural(len(specs), 'reference layer')}, {args.examples} generated cases each "
            f"({args.dtype}, method {args.method}, mode {args.mode}, seed {args.seed})\n\n"
        )
    progress = Progress(len(specs))
    results = []
    for spec in specs:
        progress.start(spec.name)
        results.append(check_candidate(spec, spec.forward, spec.backward, options, geometry="general"))
        progress.done(spec.name, results[-1])
    progress.clear()
    return None, results, []


def _files(paths: list[str]) -> list[tuple[str, bool]] | str:
    """``(file, found in a directory)`` for every PATH; a usage error message instead when a
    PATH is neither a file, a module nor a directory with files gradcheck knows."""
    files: list[tuple[str, bool]] = []
    for path in paths:
        if os.path.isdir(path):
            inside = find_files(path)
            if not inside:
                return (f"{path} is a directory with no file gradcheck knows in it "
                        f"(it looks for {', '.join(KNOWN_FILES)} and classifiers/*.py)")
            files += [(f, True) for f in inside]
        elif (path.endswith(".py") or os.path.sep in path) and not os.path.isfile(path):
            return f"no such file: {path}"
        else:
            files.append((path, False))
    return files


def _check_paths(
    args: argparse.Namespace, options: CheckOptions, out: TextIO
) -> tuple[int | None, list[Outcome], list[str]]:
    files = _files(args.paths)
    if isinstance(files, str):
        return _usage_error(files), [], []
    try:
        mappings = [parse_mapping(value) for value in args.layer or [] if "=" in value]
    except ValueError as exc:
        return _usage_error(str(exc)), [], []
    discoveries = {}
    not_imported: list[Outcome] = []
    for path, in_directory in files:
        discovery = discover_isolated(path, args.timeout)
        if isinstance(discovery, str) and in_directory:
            not_imported.append(_not_imported(path, discovery))
            continue
        if isinstance(discovery, str):
            return _usage_error(discovery), [], []
        discoveries[path] = discovery
    mapped = _mapped(discoveries, mappings)
    if isinstance(mapped, str):
        return _usage_error(mapped), [], []
    wanted = {value for value in args.layer or [] if "=" not in value}
    found = [(path, match) for path, discovery in discoveries.items() for match in discovery.matches
             if not wanted or wanted & {match.spec, match.forward, match.backward}]
    found += [item for item in mapped if item not in found]
    candidates = _unchecked(discoveries, mapped)
    unmatched = [f"{path}: {describe(c)}" for path, c in candidates]
    unmatched += [f"{path}: {note}" for path, d in discoveries.items() for note in d.skipped]
    if not found and not not_imported:
        return _usage_error(no_layers_message(args.paths, [c for _, c in candidates], wanted)), [], []
    if not args.quiet:
        libraries = sorted({match.config for _, match in found if match.kind == "array_api"})
        through = f" (written for {', '.join(libraries)}: checked through it)" if libraries else ""
        out.write(
            f"gradcheck: {_plural(len(found), 'layer')} in {', '.join(args.paths)}{through}, {args.examples} "
            f"generated cases each (method {args.method}, mode {args.mode}, geometry "
            f"{args.geometry}, seed {args.seed}, timeout {args.timeout:g} s)\n\n"
        )
    progress = Progress(len(found))

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


def _mapped(discoveries: dict[str, Discovery],
            mappings: list[tuple[str, str, str | None]]) -> list[tuple[str, Match]] | str:
    """The layers named by ``--layer LAYER=FORWARD,BACKWARD``, in each file that defines its
    forward; a message when no file does, or one defines the forward without the backward."""
    found: list[tuple[str, Match]] = []
    for layer, forward, backward in mappings:
        option = f"--layer {layer}={forward}" + (f",{backward}" if backward else "")
        paths = [path for path, d in discoveries.items() if forward in d.functions]
        if not paths:
            names = {name for d in discoveries.values() for name in d.functions}
            near = closest(forward, names)
            hint = f" (did you mean {near}?)" if near else ""
            return f"{option}: no function {forward} in {', '.join(discoveries)}{hint}"
        for path in paths:
            functions = discoveries[path].functions
            if backward is not None and backward not in functions:
                near = closest(backward, functions)
                hint = f" (did you mean {near}?)" if near else ""
                return f"{option}: {path} defines {forward} but no function {backward}{hint}"
            found.append((path, Match(layer, forward, backward)))
    return found


def _unchecked(discoveries: dict[str, Discovery],
               mapped: list[tuple[str, Match]]) -> list[tuple[str, Candidate]]:
    """Functions of each file that look like layers but are checked as none."""
    found = []
    for path, discovery in discoveries.items():
        used = discovery.matched | {name for p, m in mapped if p == path for name in (m.forward, m.backward)
                                    if name}
        found += [(path, c) for c in layer_like(discovery.functions, exclude=used)]
    return found
