"""Does the aha moment hold for every seed? The nano recipe over a grid of base models and GRPO seeds.

    python benchmarks/experiments/robustness.py                                  # 3 pretraining x 2 GRPO seeds (hours on 2 cores)
    python benchmarks/experiments/robustness.py --pretrain_seeds 0 1 2 --grpo_seeds 42 1 --eval_seeds 0 1 2
    python benchmarks/experiments/robustness.py --out runs/robust --train_args "--max_steps 100"

For each pretraining seed it builds (or reuses) that base model (``python -m tinyzero.pretrain
--seed S``); for each GRPO seed it trains the recipe on it (``python -m tinyzero.train --seed G``);
then it measures the base model and the final model the same way: all ``--n`` held-out
problems, one sample each at the recipe's temperature, for every ``--eval_seeds`` seed
(``python -m tinyzero.eval``), so each accuracy is a mean with its spread. It prints one row
per run and the verdict against issue 12's targets (``tinyzero.grid.TARGETS``), and writes ``grid.json``
and ``table.md`` into ``--out`` with the command, machine and date. Finished runs and evals
are reused, so a killed grid continues where it stopped. ``--jobs 2`` runs two commands at
once: on a 2-core machine the grid takes about half the time, and each run's figures are the
same as alone (a run gives the same bits at any thread count; tests/test_nano.py for
pretraining; for GRPO, the main command at two threads gave the one-thread grid run p0-g42
exactly, benchmarks/results/RESULTS.md, 2026-12-02).
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tinyzero.cli import ArgumentParser
from tinyzero.grid import base_model, evaluate, recipe_keys, row, table, train_run, verdict, write_record
from tinyzero.paths import REPO


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(prog="python benchmarks/experiments/robustness.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrain_seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--grpo_seeds", type=int, nargs="+", default=[42, 1])
    parser.add_argument("--eval_seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=500, help="held-out problems per eval (the whole test split)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "robustness")
    parser.add_argument("--train_args", default="", help="extra tinyzero.train flags, one string")
    parser.add_argument("--pretrain_args", default="", help="extra tinyzero.pretrain flags, one string")
    parser.add_argument("--jobs", type=int, default=1, help="commands run at once (2 on a 2-core machine)")
    args = parser.parse_args(argv)
    train_args, pretrain_args = shlex.split(args.train_args), shlex.split(args.pretrain_args)
    recipe = recipe_keys(train_args)
    out = args.out
    # Three waves, each a pool of --jobs commands: the base models, then their evals and the
    # GRPO runs, then the final models' evals. Every command is a subprocess with its own log.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        bases = dict(zip(args.pretrain_seeds, pool.map(lambda s: base_model(s, pretrain_args, out), args.pretrain_seeds)))
        grid = [(p, g) for p in args.pretrain_seeds for g in args.grpo_seeds]
        base_evals = [pool.submit(evaluate, bases[p], f"base-p{p}", args, recipe, out) for p in args.pretrain_seeds]
        runs = [pool.submit(train_run, bases[p], g, train_args, out / "runs" / f"p{p}-g{g}", out) for p, g in grid]
        base_reports = dict(zip(args.pretrain_seeds, (f.result() for f in base_evals)))
        for f in runs:
            f.result()
        finals = pool.map(lambda pg: evaluate(out / "runs" / f"p{pg[0]}-g{pg[1]}", f"final-p{pg[0]}-g{pg[1]}", args, recipe, out), grid)
        rows = [row(p, g, base_reports[p], final) for (p, g), final in zip(grid, finals)]
    v = verdict(rows)
    text = table(rows, v, len(args.eval_seeds))
    record = write_record(out, "benchmarks/experiments/robustness.py", argv, args, "grid.json", text, rows=rows, verdict=v)
    print(text)
    return record


if __name__ == "__main__":
    main()
