"""R1's comparison at nano scale: distil the RL-trained model into a smaller one, or run RL on the smaller one.

    python benchmarks/experiments/distillation.py --teacher runs/nano --jobs 2     # the teacher: python -m tinyzero.train's output
    python benchmarks/experiments/distillation.py --teacher runs/nano --seeds 42 1 # two training seeds per arm
    python benchmarks/experiments/distillation.py --teacher runs/nano --seeds 42 1 --token_seeds 42  # token: one

On the same held-out problems, measured as the robustness grid measures (``tinyzero.eval``: all
``--n`` problems, one sample each at the recipe's temperature, for every ``--eval_seeds`` seed):

- ``small base``: the student's base model, ``recipes/nano-small-pretrain.yaml`` (the teacher's
  corpus and steps, widths halved: about 0.29 of its parameters);
- ``small + GRPO``: the GRPO recipe (``recipes/nano.yaml``) run on that small base
  (``python -m tinyzero.train --pretrain_config recipes/nano-small-pretrain.yaml``);
- ``small + sft``: sequence-level distillation (``python -m tinyzero.distill``: the teacher's
  correct train-split samples, SFT);
- ``small + token``: token-level distillation (``python -m tinyzero.distill --method token``);
- ``teacher``: the RL-trained model itself.

Each arm's CPU cost is its command's wall time (one torch thread, as the recipes set it), shown
beside its figures: the arms are compared at the budget their recipes take, which is stated, not
equalised. Writes ``table.md`` and ``distillation.json`` into ``--out``; finished runs and evals
are reused.
"""

from __future__ import annotations

import json
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tinyzero.cli import ArgumentParser
from tinyzero.grid import PRICE, evaluate, fmt, pretrained, recipe_keys, run, write_record
from tinyzero.paths import REPO

SMALL = "recipes/nano-small-pretrain.yaml"


def arm(name: str, cmd: list[str], run_dir: Path, out: Path) -> dict:
    """Run one arm's command unless its run is finished; (summary, seconds)."""
    if not (run_dir / "summary.json").is_file():
        run([sys.executable, *cmd, "--output_dir", str(run_dir)], out / "logs" / f"{name}.log")
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"seconds": summary.get("wall_seconds", summary.get("seconds")), "summary": summary}


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(prog="python benchmarks/experiments/distillation.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="the RL-trained model (python -m tinyzero.train's output_dir)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="training seeds of each arm")
    parser.add_argument("--token_seeds", type=int, nargs="*", default=None,
                        help="training seeds of the token arm, the costliest (default: --seeds)")
    parser.add_argument("--eval_seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=500, help="held-out problems per eval (the whole test split)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "distillation")
    parser.add_argument("--train_args", default="", help="extra tinyzero.train flags (small + GRPO), one string")
    parser.add_argument("--distill_args", default="", help="extra tinyzero.distill flags (both methods), one string")
    parser.add_argument("--pretrain_args", default="", help="extra tinyzero.pretrain flags (the small base), one string")
    parser.add_argument("--jobs", type=int, default=1, help="commands run at once (2 on a 2-core machine)")
    args = parser.parse_args(argv)
    if not (args.teacher / "config.json").is_file():
        parser.error(f"--teacher {args.teacher}: no trained model there (config.json); train one with python -m tinyzero.train")
    train_args, distill_args = shlex.split(args.train_args), shlex.split(args.distill_args)
    recipe = recipe_keys(train_args)
    out = args.out
    # first: every arm starts from this folder
    base = pretrained(["--config", SMALL, *shlex.split(args.pretrain_args)], out / "logs" / "pretrain-small.log")
    arms = {}
    for s in args.seeds:
        arms[f"small-grpo-g{s}"] = ["-m", "tinyzero.train", "--model_name_or_path", str(base), "--seed", str(s), *train_args]
        for method in ("sft", "token"):
            if method == "token" and args.token_seeds is not None and s not in args.token_seeds:
                continue
            arms[f"small-{method}-g{s}"] = ["-m", "tinyzero.distill", "--teacher_model", str(args.teacher), "--method", method,
                                            "--student_model", str(base), "--seed", str(s), *distill_args]  # fmt: skip
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        evals = {"small base": pool.submit(evaluate, base, "small-base", args, recipe, out),
                 "teacher": pool.submit(evaluate, args.teacher, "teacher", args, recipe, out)}  # fmt: skip
        done = {name: pool.submit(arm, name, cmd, out / "runs" / name, out) for name, cmd in arms.items()}
        done = {name: f.result() for name, f in done.items()}
        for name in arms:
            evals[name] = pool.submit(evaluate, out / "runs" / name, name, args, recipe, out)
        reports = {name: f.result() for name, f in evals.items()}
    base_pre = json.loads((base / "pretrain.json").read_text())
    # the small base: its pretraining; the teacher: its GRPO run (its own base model's pretraining not counted)
    teacher_summary = args.teacher / "summary.json"
    seconds_of = {"small base": base_pre.get("pretrain_seconds"),
                  "teacher": json.loads(teacher_summary.read_text()).get("wall_seconds") if teacher_summary.is_file() else None}
    rows = []
    for name, rep in reports.items():
        rows.append({
            "arm": name, "accuracy": rep["accuracy"], "accuracy_std": rep.get("accuracy_std", 0.0),
            "thinking": rep["thinking_length"], **{k: rep.get(k) for k, _ in PRICE},
            "seconds": done[name]["seconds"] if name in done else seconds_of.get(name),
            "kept": done[name]["summary"].get("kept") if name in done else None,
        })  # fmt: skip
    head = ["arm", f"accuracy (mean ± std over {len(args.eval_seeds)} seeds)", "thinking (chars)", *(label for _, label in PRICE),
            "seconds (its command)", "teacher samples kept"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["arm"], f"{fmt(r['accuracy'])} ± {fmt(r['accuracy_std'])}", fmt(r["thinking"], 0), *(fmt(r.get(k), 2) for k, _ in PRICE),
                 fmt(r["seconds"], 0), str(r["kept"] or "-")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + f"\n\nsmall base: {base} ({base_pre.get('parameters', 0):,} parameters); teacher: {args.teacher}"
    record = write_record(out, "benchmarks/experiments/distillation.py", argv, args, "distillation.json", text, small_base=str(base), rows=rows)
    print(text)
    return record


if __name__ == "__main__":
    main()
