"""Flaky-test hunt: ``python -m benchmarks.reliability --seeds 10 [--jobs 2] [-- pytest args]``.

Runs the test suite once per hypothesis seed under the ``dev`` profile (randomised, unlike
``ci``), one run after another, each with its own example database (so that no run replays
another's failures) and its own JUnit XML report. Then it compares the outcome of every
test id across the runs and prints a table of the tests whose outcome varies, with the
first line of each failure, and a one-line summary. Exit status: 0 when every test has
the same outcome under every seed and none fails under all of them, 1 otherwise, 2 when a
run produced no report (a usage or internal error of pytest).

Not part of CI: ten seeds of the full suite take ten times as long as one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One letter per outcome for the table.
LETTERS = {"passed": ".", "failed": "F", "error": "E", "skipped": "s", "absent": "-"}
BAD = ("failed", "error")


@dataclass
class Run:
    """The outcome of every test id in one run of the suite."""

    seed: int
    seconds: float
    exit_code: int
    outcomes: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)


def _test_id(classname: str, name: str) -> str:
    """``tests/layers/test_x.py::TestY::test_z[...]`` from JUnit's dotted class name."""
    parts = classname.split(".") if classname else []
    for cut in range(len(parts), 0, -1):
        path = Path(*parts[:cut]).with_suffix(".py")
        if (ROOT / path).is_file():
            return "::".join([path.as_posix(), *parts[cut:], name])
    return "::".join([*parts, name])


def parse_junit(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(outcomes, first lines of failure messages)`` by test id from a JUnit XML file."""
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = _test_id(case.get("classname", ""), case.get("name", ""))
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag if child.tag != "failure" else "failed"
                text = child.get("message") or child.text or ""
                if outcome in BAD:
                    messages[test] = (text.strip().splitlines() or [""])[0][:160]
                break
        # pytest reports a failing teardown as a second entry for the same test
        if outcomes.get(test) not in BAD:
            outcomes[test] = outcome
    return outcomes, messages


def run_suite(seed: int, jobs: int, extra: Sequence[str], workdir: Path) -> Run:
    """One run of the suite under ``--hypothesis-seed=seed``; its log and report go to ``workdir``."""
    report = workdir / f"seed-{seed}.xml"
    log = workdir / f"seed-{seed}.log"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
               "--hypothesis-profile=dev", f"--hypothesis-seed={seed}", f"--junitxml={report}"]
    if jobs > 0:
        command += ["-n", str(jobs)]
    command += list(extra)
    env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(workdir / f"hypothesis-{seed}")}
    env.pop("CI", None)  # the profile is given explicitly; CI must not change anything else
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        code = subprocess.call(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    result = Run(seed, time.perf_counter() - started, code)
    if report.is_file():
        result.outcomes, result.messages = parse_junit(report)
    return result


@dataclass
class Comparison:
    tests: list[str]
    varying: list[str]
    always_bad: list[str]


def compare(runs: Sequence[Run]) -> Comparison:
    """Tests whose outcome differs between runs, and tests that fail in every run."""
    tests = sorted(set().union(*(r.outcomes for r in runs)))
    varying, always_bad = [], []
    for test in tests:
        seen = {r.outcomes.get(test, "absent") for r in runs}
        if len(seen) > 1:
            varying.append(test)
        elif seen <= set(BAD):
            always_bad.append(test)
    return Comparison(tests, varying, always_bad)


def table(runs: Sequence[Run], tests: Sequence[str]) -> str:
    """One row per test: its outcome letter under each seed, then the first failure message."""
    seeds = [str(r.seed) for r in runs]
    width = max(len(s) for s in seeds)
    lines = ["  ".join(s.rjust(width) for s in seeds) + "  test"]
    for test in tests:
        letters = [LETTERS[r.outcomes.get(test, "absent")].rjust(width) for r in runs]
        lines.append("  ".join(letters) + "  " + test)
        for r in runs:
            if test in r.messages:
                lines.append(f"{'':{width}}  seed {r.seed}: {r.messages[test]}")
    return "\n".join(lines)


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    own, extra = _split(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reliability", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="number of runs (default 10)")
    parser.add_argument("--first-seed", type=int, default=1,
                        help="hypothesis seeds first-seed, first-seed + 1, ... (default 1)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="pytest-xdist workers per run; 0 runs in one process (default 2)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep every run's log and JUnit XML in DIR (default: a temporary directory)")
    args = parser.parse_args(own)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 to compare anything")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    with tempfile.TemporaryDirectory(prefix="gradcheck-reliability-") as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        return _run_all(seeds, args.jobs, extra, workdir, kept=bool(args.keep))


def _run_all(seeds: Sequence[int], jobs: int, extra: Sequence[str], workdir: Path, *, kept: bool) -> int:
    started = time.perf_counter()
    runs: list[Run] = []
    for seed in seeds:
        r = run_suite(seed, jobs, extra, workdir)
        counts = {o: list(r.outcomes.values()).count(o) for o in ("passed", "failed", "error", "skipped")}
        shown = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
        print(f"seed {seed}: {shown or 'no report'} (exit {r.exit_code}, {r.seconds:.0f} s)", flush=True)
        runs.append(r)
    missing = [r.seed for r in runs if not r.outcomes]
    if missing:
        where = f"see the logs in {workdir}" if kept else "rerun with --keep DIR to see the logs"
        print(f"no test report for seed(s) {missing}: {where}")
        return 2
    result = compare(runs)
    if result.varying:
        legend = ", ".join(f"{letter} {outcome}" for outcome, letter in LETTERS.items())
        print(f"\nTests whose outcome varies across seeds ({legend}):")
        print(table(runs, result.varying))
    if result.always_bad:
        print("\nTests that fail under every seed:")
        print(table(runs, result.always_bad))
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{len(runs)} seeds: {len(result.tests)} tests, {len(result.varying)} with varying outcomes"
          + (f", {len(result.always_bad)} failing under every seed" if result.always_bad else "")
          + f" ({minutes:.1f} min)")
    return 1 if result.varying or result.always_bad else 0


if __name__ == "__main__":
    sys.exit(main())
