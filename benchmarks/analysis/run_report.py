"""Where a GRPO run's time went, and what it learned: read from the run's metrics.jsonl.

    python benchmarks/analysis/run_report.py RUN_DIR [RUN_DIR ...]
    python -m tinyzero.eval --model MODEL --n 500 --k 4 --output OUT.json   # writes OUT.samples.jsonl
    python benchmarks/analysis/run_report.py --samples OUT.samples.jsonl [MORE.samples.jsonl ...]

Per run:
- the step time split (mean seconds per training step): ``time/generation`` (sampling the
  completions), the rest of ``time/rollout`` (rewards, old log-probs, advantages), and the
  update, ``step_time`` minus ``time/rollout``: the loss's forward and backward passes. TRL's
  ``step_time`` times ``training_step``, so the optimizer step and the held-out evals, which
  run between steps, are outside all three. With ``steps_per_generation`` > 1 only the steps
  that sample carry ``time/generation`` and ``time/rollout``; their sums are spread over all
  steps.
- the held-out figures at every eval (accuracy, thinking length, attempts, and the nano search
  figures when logged), and accuracy and thinking length last vs first.

Every figure is read from the file; nothing is recomputed.

With ``--samples``: how good is each attempt of a nano trace, by its position in the trace? For
every eval samples file (the records ``tinyzero.eval --output`` writes), the attempt lines of
each completion's thinking are parsed back (``tinyzero.nano.corpus.parse_attempts``; attempts
are scored by the grader's safe evaluator, never ``eval``) and grouped by their index in the
trace (1st attempt, 2nd, ...). Per index it prints how many attempts there are, how often their
written arithmetic is right, how often they reach the target (a hit: the attempt's true value,
whatever the model wrote, equals the target) and how often a hit is checked "yes", and how
often an attempt repeats one made earlier in the same trace. If later attempts are worse than
early ones, or repeats, a longer search earns less than its length suggests: that is what this
measures. Under the table, the shares of the first operation over all attempts: the writer
draws it evenly from + * -, and a policy that has collapsed onto one of them searches a third
of the space. The problems' targets come from the shipped test split named by
``--dataset``/``--split``, as in the eval.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tinyzero.cli import ArgumentParser
from tinyzero.nano.traces import parse_attempts, tries
from tinyzero.runfiles import METRICS_FILE, read_jsonl
from tinyzero.tasks.data import load_task_data
from tinyzero.tasks.grading import thinking_text

EVAL_KEYS = (
    "eval/accuracy",
    "eval/thinking_length",
    "eval/attempts",
    "eval/format_rate",
    "eval/self_check_rate",
    "eval/search/hit_yes_rate",
    "eval/search/continue_after_no",
    "eval/search/arithmetic_ok",
)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def report(run_dir: Path) -> dict:
    rows = read_jsonl(run_dir / METRICS_FILE)
    if not rows:
        raise SystemExit(f"{run_dir / METRICS_FILE}: no metric rows (is this a tinyzero run folder?)")
    steps = [r for r in rows if "step_time" in r]
    sampled = [r for r in steps if "time/rollout" in r]
    if not sampled:
        raise SystemExit(f"{run_dir / METRICS_FILE}: no rows with step_time and time/rollout")
    gen = sum(r["time/generation"] for r in sampled) / len(steps)
    rollout = sum(r["time/rollout"] for r in sampled) / len(steps)
    step = mean([r["step_time"] for r in steps])
    print(f"== {run_dir}  ({len(steps)} training steps, {len(sampled)} of them sampling)")
    print(f"step time {step:.2f} s = generation {gen:.2f} s ({gen / step:.0%}) + rest of rollout "
          f"{rollout - gen:.2f} s ({(rollout - gen) / step:.0%}) + update {step - rollout:.2f} s ({(step - rollout) / step:.0%})")
    lengths = [r["completions/mean_length"] for r in sampled if "completions/mean_length" in r]
    if lengths:
        print(f"mean completion length {mean(lengths):.1f} tokens")
    evals = [r for r in rows if "eval/accuracy" in r]
    keys = [k for k in EVAL_KEYS if k in evals[0]] if evals else []
    if evals:
        print("step " + " ".join(f"{k.removeprefix('eval/'):>22}" for k in keys))
        for r in evals:
            print(f"{r['step']:4d} " + " ".join(f"{r[k]:22.3f}" for k in keys))
        first, last = evals[0], evals[-1]
        for k in ("eval/accuracy", "eval/thinking_length"):
            ratio = last[k] / first[k] if first[k] else float("inf")
            print(f"{k}: {first[k]:.3f} -> {last[k]:.3f} ({ratio:.2f}x)")
    return {"step_time": step, "generation": gen, "rollout": rollout, "evals": evals}


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


def depth_report(paths: list[str], dataset: str = "countdown_nano", split: str = "test") -> None:
    """Per eval samples file, its attempts by position in the trace (see the module docstring)."""
    targets = [row["target"] for row in load_task_data(dataset, split=split, template="nano")]
    for path in paths:
        if not Path(path).is_file():
            raise SystemExit(f"{path}: no such file")
        records = read_jsonl(path)
        if not records or "completion" not in records[0]:
            raise SystemExit(f"{path}: not an eval samples file (no 'completion' records)")
        if max(r["problem"] for r in records) >= len(targets):
            raise SystemExit(f"{path}: problem indices beyond the {dataset} {split} split")
        print(f"\n{path}: {len(records)} completions")
        print(f"{'attempt':>8} {'count':>6} {'arithmetic ok':>14} {'hit rate':>9} {'hit -> yes':>11} {'repeat':>7}")
        for row in depth_table(records, targets):
            print(f"{row['index']:>8} {row['attempts']:6d} {row['arithmetic_ok']:14.2f} {row['hit_rate']:9.3f} "
                  f"{row['hit_yes']:11.2f} {row['repeat']:7.2f}")  # fmt: skip
        ops = first_operations(records)
        print("first operation: " + ", ".join(f"{op} {share:.2f}" for op, share in ops.items()))


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders (each with metrics.jsonl)")
    parser.add_argument("--samples", nargs="+", default=[], help="eval samples files (OUT.samples.jsonl from tinyzero.eval --output)")
    parser.add_argument("--dataset", default="countdown_nano", help="--samples: the split the problems come from")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    if not args.runs and not args.samples:
        parser.error("give run folders, --samples files, or both")
    for run in args.runs:
        report(run)
    if args.samples:
        depth_report(args.samples, args.dataset, args.split)


if __name__ == "__main__":
    main()
