"""Are two runs the same run? Compare two metrics.jsonl files in every figure but the timings.

    python benchmarks/analysis/same_run.py runs/nano/metrics.jsonl benchmarks/results/lr2e-4/metrics/p0-g42.metrics.jsonl

Two runs of one recipe on one base model and seed, with different code (a faster sampler, a
thread setting), are the same run when every logged figure that is not a time agrees exactly:
each step's loss, grad norm, rewards, completion lengths, and every held-out eval. Then a
speed-up changed nothing that training produced. Timings (``step_time``, ``time/*``) differ
from run to run and are left out. Prints the number of figures compared, and the first
differences if any; exit status 1 when they differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def is_timing(key: str) -> bool:
    return key == "step_time" or key.startswith("time/")


def load(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"same_run.py: cannot read {path}: {e}") from None


def compare(a: list[dict], b: list[dict]) -> tuple[int, list[str]]:
    """(figures compared, differences as lines)."""
    diffs, n = [], 0
    if len(a) != len(b):
        diffs.append(f"{len(a)} rows against {len(b)}")
    for i, (ra, rb) in enumerate(zip(a, b)):
        keys = sorted(k for k in set(ra) | set(rb) if not is_timing(k))
        for k in keys:
            n += 1
            if ra.get(k) != rb.get(k):
                diffs.append(f"row {i} (step {ra.get('step')}): {k} {ra.get(k)!r} != {rb.get(k)!r}")
    return n, diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--show", type=int, default=10, help="differences to print")
    args = ap.parse_args(argv)
    n, diffs = compare(load(args.a), load(args.b))
    if not diffs:
        print(f"same run: all {n} non-timing figures equal ({args.a} vs {args.b})")
        return 0
    print(f"different: {len(diffs)} of {n} non-timing figures differ ({args.a} vs {args.b}); first ones:")
    for line in diffs[: args.show]:
        print("  " + line)
    return 1


if __name__ == "__main__":
    sys.exit(main())
