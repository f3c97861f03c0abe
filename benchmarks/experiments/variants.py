"""Is it the reward or the algorithm? The nano recipe under GRPO, RLOO and three control rewards.

    python benchmarks/experiments/variants.py --jobs 2                        # 5 variants x 2 seeds on the shipped base model
    python benchmarks/experiments/variants.py --variants grpo rloo --seeds 42 # a subset
    python benchmarks/experiments/variants.py --reuse grpo-g42=runs/robustness/runs/p0-g42   # a finished run, not run again

Every variant is the recipe (``recipes/nano.yaml``) on the same base model (the recipe's own,
pretraining seed 0) and the same GRPO seeds, with one thing changed:

- ``grpo``: the recipe (TRL's ``GRPOTrainer``, reward: the task's 1.0 / 0.1 / 0.0);
- ``rloo``: ``--trainer rloo``, TRL's ``RLOOTrainer`` (REINFORCE with a leave-one-out group
  baseline; TRL offers no separate plain REINFORCE trainer, and RLOO is that with the group as
  baseline), with the same reward;
- ``random``: ``--reward random``: each completion 0 or 1 at random, whatever it says;
- ``format``: ``--reward format``: 1 for a well-formed completion, whatever its answer;
- ``flipped``: ``--reward flipped``: the task's reward negated.

Then the final models are measured as the robustness grid measures them (``tinyzero.eval``: all
``--n`` held-out problems, one sample each at the recipe's temperature, for every ``--eval_seeds``
seed, so each accuracy is a mean with its spread) and compared to the base model measured the
same way. Writes ``table.md``, ``variants.json`` and ``variants.png`` (held-out accuracy and
thinking length against step, each run's training-time eval at one sampling seed) into ``--out``,
with the command, machine and date. Finished runs and evals are reused.
"""

from __future__ import annotations

import shlex
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tinyzero.cli import ArgumentParser
from tinyzero.grid import PRICE, base_model, evaluate, fmt, recipe_keys, train_run, write_record
from tinyzero.paths import REPO

VARIANTS = {
    "grpo": [],
    "rloo": ["--trainer", "rloo"],
    "random": ["--reward", "random"],
    "format": ["--reward", "format"],
    "flipped": ["--reward", "flipped"],
}


def summarize(name: str, seed: int, base: dict, final: dict) -> dict:
    out = {
        "variant": name,
        "seed": seed,
        "accuracy": final["accuracy"],
        "accuracy_std": final.get("accuracy_std", 0.0),
        "accuracy_x": final["accuracy"] / base["accuracy"] if base["accuracy"] else float("inf"),
        "thinking": final["thinking_length"],
        "thinking_x": final["thinking_length"] / base["thinking_length"] if base["thinking_length"] else float("inf"),
    }
    for key, _ in PRICE:
        out[key] = final.get(key)
    return out


def table(base: dict, rows: list[dict], n_eval_seeds: int) -> str:
    head = ["variant", "seed", f"accuracy (mean ± std over {n_eval_seeds} seeds)", "x base", "thinking (chars)", "x base",
            *(label for _, label in PRICE)]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.append("| " + " | ".join(["base model", "-", f"{fmt(base['accuracy'])} ± {fmt(base.get('accuracy_std', 0.0))}", "1.00",
                                    fmt(base["thinking_length"], 0), "1.00", *(fmt(base.get(k), 2) for k, _ in PRICE)]) + " |")  # fmt: skip
    for r in rows:
        cells = [r["variant"], str(r["seed"]), f"{fmt(r['accuracy'])} ± {fmt(r['accuracy_std'])}", fmt(r["accuracy_x"], 2),
                 fmt(r["thinking"], 0), fmt(r["thinking_x"], 2), *(fmt(r.get(k), 2) for k, _ in PRICE)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for name in dict.fromkeys(r["variant"] for r in rows):
        acc = [r["accuracy_x"] for r in rows if r["variant"] == name]
        lines.append(f"{name}: accuracy {min(acc):.2f}x to {max(acc):.2f}x its base (median {statistics.median(acc):.2f}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(prog="python benchmarks/experiments/variants.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1], help="GRPO seeds (the trainer's --seed)")
    parser.add_argument("--pretrain_seed", type=int, default=0, help="the base model's pretraining seed (0: the shipped one)")
    parser.add_argument("--eval_seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=500, help="held-out problems per eval (the whole test split)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "variants")
    parser.add_argument("--train_args", default="", help="extra tinyzero.train flags for every variant, one string")
    parser.add_argument("--reuse", nargs="*", default=[], metavar="NAME-gSEED=RUN_DIR",
                        help="finished runs to use instead of training them (e.g. the robustness grid's p0 runs)")
    parser.add_argument("--jobs", type=int, default=1, help="commands run at once (2 on a 2-core machine)")
    args = parser.parse_args(argv)
    extra = shlex.split(args.train_args)
    recipe = recipe_keys(extra)
    out = args.out
    reuse = {}
    for item in args.reuse:
        key, sep, path = item.partition("=")
        if not sep or not (Path(path) / "summary.json").is_file():
            parser.error(f"--reuse {item!r}: expected NAME-gSEED=RUN_DIR with a finished run (summary.json) in RUN_DIR")
        reuse[key] = Path(path)
    grid = [(v, s) for v in args.variants for s in args.seeds]
    run_dir = {(v, s): reuse.get(f"{v}-g{s}", out / "runs" / f"{v}-g{s}") for v, s in grid}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        base = base_model(args.pretrain_seed, [], out)
        base_eval = pool.submit(evaluate, base, f"base-p{args.pretrain_seed}", args, recipe, out)
        runs = [pool.submit(train_run, base, s, [*VARIANTS[v], *extra], run_dir[v, s], out) for v, s in grid]
        for f in runs:
            f.result()
        finals = list(pool.map(lambda vs: evaluate(run_dir[vs], f"final-{vs[0]}-g{vs[1]}", args, recipe, out), grid))
        base_report = base_eval.result()
    rows = [summarize(v, s, base_report, final) for (v, s), final in zip(grid, finals)]
    text = table(base_report, rows, len(args.eval_seeds))

    from tinyzero.plot import compare_runs  # here: matplotlib is slow to import

    names = list(dict.fromkeys(args.variants))
    figure = compare_runs([run_dir[g] for g in grid], out / "variants.png", labels=[f"{v} seed {s}" for v, s in grid],
                          title=f"The nano recipe's variants on base model p{args.pretrain_seed} (held-out: one sampling seed)",
                          colors=[names.index(v) for v, _ in grid], dashed=[args.seeds.index(s) > 0 for _, s in grid])  # fmt: skip
    record = write_record(
        out, "benchmarks/experiments/variants.py", argv, args, "variants.json", f"{text}\n\nfigure: {figure.name}",
        base={"model": str(base), **{k: base_report.get(k) for k in ("accuracy", "accuracy_std", "thinking_length")}},
        runs={f"{v}-g{s}": str(run_dir[v, s]) for v, s in grid},
        rows=rows,
    )
    print(text)
    return record


if __name__ == "__main__":
    main()
