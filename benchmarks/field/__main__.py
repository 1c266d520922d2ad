"""Agreement of gradcheck's verdicts with the torch labels on the field corpus.

``python -m benchmarks.field DIR [--labels benchmarks/field/labels.json] [--jobs 2] [--json OUT]
[--markdown] [--strict] [--only ID ...]``

A measurement: the exit status is 0 whatever gradcheck says, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.field import agreement

HERE = Path(__file__).resolve().parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.field", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="directory of <id>.py student files")
    parser.add_argument("--labels", type=Path, default=HERE / "labels.json")
    parser.add_argument("--manifest", type=Path, default=HERE / "manifest.csv")
    parser.add_argument("--jobs", type=int, default=2, help="files checked at once (default 2)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per file (default 900)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write everything machine-readably to OUT")
    parser.add_argument("--markdown", action="store_true", help="print the table as GitHub markdown")
    parser.add_argument("--strict", action="store_true", help="run gradcheck with --strict")
    parser.add_argument("--only", nargs="+", metavar="ID")
    parser.add_argument("--gc-dir", type=Path, metavar="DIR",
                        help="keep gradcheck's result per file in DIR and reuse it (stale once gradcheck "
                             "changes)")
    return parser.parse_args(argv)


def _years(manifest: Path) -> dict[str, str]:
    if not manifest.exists():
        return {}
    with manifest.open(newline="") as fh:
        return {row["id"]: row.get("year") or "?" for row in csv.DictReader(fh)}


def _text_table(years: list[str], layers: list[str], cells: dict[str, dict[str, str]]) -> str:
    heads = ["year", *layers, "all"]
    rows = [[y, *(cells[y].get(layer, "") for layer in [*layers, "all"])] for y in [*years, "all"]]
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in [heads, *rows]]
    return "\n".join(lines)


def _markdown_table(years: list[str], layers: list[str], cells: dict[str, dict[str, str]]) -> str:
    heads = ["year", *layers, "all"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for y in [*years, "all"]:
        row = [f"**{y}**" if y == "all" else y, *(cells[y].get(layer, "") for layer in [*layers, "all"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _listing(title: str, pairs: list[dict[str, Any]]) -> list[str]:
    if not pairs:
        return []
    lines = [f"\n{title} ({len(pairs)}):"]
    for p in pairs:
        label = f"label {p['label']}" + (f" {p['culprits']}" if p["culprits"] else "")
        if p.get("label_max_error") is not None:
            label += f" (max rel err {p['label_max_error']:.2g})"
        lines.append(f"  {p['id']}  {p['layer']}: {label}; gradcheck {p['gradcheck']}: {p['reason']}")
        if p["details"]:
            lines.append(f"      label details: {p['details'][:300]}")
    return lines


def _check_all(args: argparse.Namespace, ids: list[str]) -> dict[str, dict[str, Any]]:
    def one(file_id: str) -> tuple[str, dict[str, Any]]:
        saved = args.gc_dir / f"{file_id}{'.strict' if args.strict else ''}.json" if args.gc_dir else None
        if saved is not None and saved.exists():
            return file_id, json.loads(saved.read_text())
        gc = agreement.run_gradcheck(args.dir / f"{file_id}.py", args.strict, args.timeout)
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(gc))
        return file_id, gc

    results = {}
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for n, (file_id, gc) in enumerate(pool.map(one, ids), 1):
            results[file_id] = gc
            print(f"[{n}/{len(ids)}] {file_id}: exit {gc['exit']}{' ' + gc['error'] if gc['error'] else ''}",
                  file=sys.stderr, flush=True)
    return results


def _select(args: argparse.Namespace, files: dict[str, Any]) -> list[str] | None:
    present = {p.stem for p in args.dir.glob("*.py")}
    ids = sorted(i for i in files if i in present)
    if args.only:
        unknown = sorted(set(args.only) - set(ids))
        if unknown:
            print(f"error: no labelled file for id(s): {', '.join(unknown)}", file=sys.stderr)
            return None
        ids = sorted(args.only)
    def labelled(i: str) -> bool:
        return any(v.get("status") not in agreement.SKIPPED for v in files[i]["layers"].values())

    return [i for i in ids if labelled(i)]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if not args.dir.is_dir() or not args.labels.exists():
        print(f"error: need a directory ({args.dir}) and a labels file ({args.labels})", file=sys.stderr)
        return 2
    files = json.loads(args.labels.read_text())["files"]
    ids = _select(args, files)
    if ids is None:
        return 2
    years = _years(args.manifest)
    gc = _check_all(args, ids)
    pairs = [p for i in ids for p in agreement.join(i, files[i], gc[i], years.get(i, i.split("_")[0]))]
    summary = agreement.summarise(pairs, len(ids))
    row_years, layers, cells = agreement.table(pairs)
    warnings = Counter(kind for p in pairs for kind in p["warnings"])
    print(agreement.summary_line(summary))
    print()
    print((_markdown_table if args.markdown else _text_table)(row_years, layers, cells))
    lines = _listing("false alarms", [p for p in pairs if p["outcome"] == "false alarm"])
    lines += _listing("missed", [p for p in pairs if p["outcome"] == "missed"])
    lines += _listing("not found", [p for p in pairs if p["outcome"] == "not found"])
    env = [p for p in pairs if p["outcome"] == "env_error"]
    if env:
        lines.append(f"\nenv_error pairs, apart ({len(env)}; label under Python 2 / old NumPy -> gradcheck):")
        lines += [f"  {p['id']}  {p['layer']}: {p['env_status']} -> {p['gradcheck']}"
                  + (f": {p['reason'][:150]}" if p["reason"] else "") for p in env]
    if warnings:
        lines.append("\nwarnings by kind:")
        lines += [f"  {kind}: {count}" for kind, count in warnings.most_common()]
    print("\n".join(lines))
    if args.json:
        report = {"summary": summary, "summary_line": agreement.summary_line(summary), "table": cells,
                  "pairs": pairs, "warnings": dict(warnings),
                  "files": {i: {"exit": gc[i]["exit"], "error": gc[i]["error"]} for i in ids}}
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
