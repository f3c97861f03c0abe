"""How good is each attempt of a nano trace, by its position in the trace?

    python -m tinyzero.eval --model MODEL --n 500 --k 4 --output OUT.json   # writes OUT.samples.jsonl
    python benchmarks/trace_depth.py OUT.samples.jsonl [MORE.samples.jsonl ...]

For every eval samples file (the records ``tinyzero.eval --output`` writes), the attempt lines
of each completion's thinking are parsed back (``tinyzero.nano.corpus.parse_attempts``; attempts are
scored by the grader's safe evaluator, never ``eval``) and grouped by their index in the trace
(1st attempt, 2nd, ...). Per index it prints how many attempts there are, how often their
written arithmetic is right, how often they reach the target (a hit: the attempt's true value,
whatever the model wrote, equals the target) and how often a hit is
checked "yes", and how often an attempt repeats one made earlier in the same trace. If later
attempts are worse than early ones, or repeats, a longer search earns less than its length
suggests: that is what this measures. Under the table, the shares of the first operation over
all attempts: the writer draws it evenly from + * -, and a policy that has collapsed onto one
of them searches a third of the space. The problems' targets come from the shipped
test split named by ``--dataset``/``--split``, as in the eval.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinyzero.cli import ArgumentParser  # noqa: E402
from tinyzero.nano.traces import parse_attempts, tries  # noqa: E402
from tinyzero.runfiles import read_jsonl  # noqa: E402
from tinyzero.tasks.data import load_task_data  # noqa: E402
from tinyzero.tasks.grading import thinking_text  # noqa: E402


def depth_table(records: list[dict], targets: list[int], max_index: int = 6) -> list[dict]:
    """One row per attempt index (1-based; the last row pools max_index and beyond)."""
    by_index: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        target = targets[record["problem"]]
        seen = set()
        for i, att in enumerate(tries(parse_attempts(thinking_text(record["completion"]))), start=1):
            row = by_index[min(i, max_index)]
            row["attempts"] += 1
            row["repeats"] += att.expr in seen
            seen.add(att.expr)
            row["arithmetic_ok"] += att.arithmetic_ok
            hit = att.value == target
            row["hits"] += hit
            row["hits_yes"] += hit and att.verdict == "yes"
    table = []
    for i in sorted(by_index):
        row = by_index[i]
        table.append({
            "index": f"{i}+" if i == max_index else str(i),
            "attempts": row["attempts"],
            "arithmetic_ok": row["arithmetic_ok"] / row["attempts"],
            "hit_rate": row["hits"] / row["attempts"],
            "hit_yes": row["hits_yes"] / row["hits"] if row["hits"] else float("nan"),
            "repeat": row["repeats"] / row["attempts"],
        })
    return table


def first_operations(records: list[dict]) -> dict[str, float]:
    """Shares of the first operation (the one inside the parentheses) over all attempts."""
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        for att in tries(parse_attempts(thinking_text(record["completion"]))):
            inner = att.expr[att.expr.find("(") + 1 : att.expr.find(")")] if "(" in att.expr else ""
            ops = [c for c in inner if c in "+-*/"]
            if ops:
                counts[ops[0]] += 1
    total = sum(counts.values())
    return {op: counts[op] / total for op in "+*-"} if total else {}


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", nargs="+", help="eval samples files (OUT.samples.jsonl from tinyzero.eval --output)")
    parser.add_argument("--dataset", default="countdown_nano")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    targets = [row["target"] for row in load_task_data(args.dataset, split=args.split, template="nano")]
    for path in args.samples:
        if not Path(path).is_file():
            raise SystemExit(f"{path}: no such file")
        records = read_jsonl(path)
        if not records or "completion" not in records[0]:
            raise SystemExit(f"{path}: not an eval samples file (no 'completion' records)")
        if max(r["problem"] for r in records) >= len(targets):
            raise SystemExit(f"{path}: problem indices beyond the {args.dataset} {args.split} split")
        print(f"\n{path}: {len(records)} completions")
        print(f"{'attempt':>8} {'count':>6} {'arithmetic ok':>14} {'hit rate':>9} {'hit -> yes':>11} {'repeat':>7}")
        for row in depth_table(records, targets):
            print(f"{row['index']:>8} {row['attempts']:6d} {row['arithmetic_ok']:14.2f} {row['hit_rate']:9.3f} "
                  f"{row['hit_yes']:11.2f} {row['repeat']:7.2f}")  # fmt: skip
        ops = first_operations(records)
        print("first operation: " + ", ".join(f"{op} {share:.2f}" for op, share in ops.items()))


if __name__ == "__main__":
    main()
