"""Verdict quality in one report: ``python -m benchmarks.verdict_quality``.

- Sensitivity: the mutation score over the catalogue of realistic student bugs
  (``benchmarks/mutants``), each checked through the worker path of ``gradcheck check``:
  caught, with the right gradients (or the forward) named, and the expected diagnosis and
  failing geometry where they apply.
- Specificity: correct variants written differently from the references must pass, and the
  soak (``benchmarks/soak.py``) counts false alarms over generated cases, kinks included.
- Resolution: the smallest single-entry error detected (``benchmarks/sensitivity.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import sensitivity, soak
from benchmarks.mutants import Result, catalogue, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--soak-cases", type=int, default=2000,
                        help="generated cases in the soak (10000 for the long form)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)

    mutants, variants, warned = catalogue()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results: list[Result] = list(pool.map(run, [*mutants, *variants, *warned]))
    mutant_results = results[: len(mutants)]
    variant_results = results[len(mutants):len(mutants) + len(variants)]
    warned_results = results[len(mutants) + len(variants):]
    caught = sum(not r.outcome.passed for r in mutant_results)
    right = sum(r.verdict_right for r in mutant_results)
    variants_ok = sum(r.verdict_right for r in variant_results)
    families = sorted({r.edit.spec for r in mutant_results})
    print(f"Mutation catalogue: {len(mutants)} mutants over {len(families)} layers "
          f"({time.perf_counter() - started:.0f} s)")
    print(f"  caught: {caught}/{len(mutants)} ({100 * caught / len(mutants):.1f}%); with the right "
          f"gradient named, and the expected diagnosis and geometry: {right}/{len(mutants)}")
    for r in mutant_results:
        if not r.verdict_right:
            print(f"  - {r.edit.name}: expected {r.edit.expectation()}, got {sorted(r.failing)}")
    print(f"Correct variants passing: {variants_ok}/{len(variants)}")
    for r in variant_results:
        if not r.verdict_right:
            print(f"  - {r.edit.name}: FAILED {sorted(r.failing)}, warnings {sorted(r.warned)}")
    warned_ok = sum(r.verdict_right for r in warned_results)
    print(f"Correct rewrites with a hazard passing with exactly their warnings: {warned_ok}/{len(warned)}")
    for r in warned_results:
        if not r.verdict_right:
            print(f"  - {r.edit.name}: failing {sorted(r.failing)}, warnings {sorted(r.warned)}")

    summary = soak.run(args.soak_cases)
    print(f"Soak: {summary.cases} cases ({summary.kink_cases} on kinks or ties), float64 and "
          f"float32, every layer: {len(summary.failures)} false alarms; {summary.kink_entries} "
          f"entries reported as kinks ({summary.seconds:.0f} s)")

    rows = sensitivity.measure()
    keys = ["float64 full", "float32 full", "float64 directional", "float32 directional"]
    print("Smallest detected error (one entry off by a relative delta):")
    print("| gradient (entries) | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for row in rows:
        cells = [f"{row[k]:.0e}" if row[k] is not None else "> 1e-1" for k in keys]
        print(f"| {row['layer']} ({row['entries']}) | " + " | ".join(cells) + " |")

    if args.json:
        payload: dict[str, Any] = {
            "mutants": len(mutants), "caught": caught, "named_right": right,
            "variants": len(variants), "variants_passing": variants_ok,
            "warned": len(warned), "warned_right": warned_ok,
            "soak_cases": summary.cases, "soak_false_alarms": len(summary.failures),
            "kink_entries": summary.kink_entries, "sensitivity": rows,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
    ok = (right == len(mutants) and variants_ok == len(variants) and warned_ok == len(warned)
          and not summary.failures)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
