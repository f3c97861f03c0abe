"""Where a GRPO run's time went, and what it learned: read from the run's metrics.jsonl.

    python benchmarks/run_report.py RUN_DIR [RUN_DIR ...]

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
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinyzero.cli import ArgumentParser  # noqa: E402
from tinyzero.runfiles import METRICS_FILE, read_jsonl  # noqa: E402

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


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with metrics.jsonl)")
    for run in parser.parse_args(argv).runs:
        report(run)


if __name__ == "__main__":
    main()
