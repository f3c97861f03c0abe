"""Does the aha moment hold for every seed? The nano recipe over a grid of base models and GRPO seeds.

    python benchmarks/robustness.py                                  # 3 pretraining x 2 GRPO seeds (hours on 2 cores)
    python benchmarks/robustness.py --pretrain_seeds 0 1 2 --grpo_seeds 42 1 --eval_seeds 0 1 2
    python benchmarks/robustness.py --out runs/robust --train_args "--max_steps 100"

For each pretraining seed it builds (or reuses) that base model (``python -m tinyzero.pretrain
--seed S``); for each GRPO seed it trains the recipe on it (``python -m tinyzero.train --seed G``);
then it measures the base model and the final model the same way: all ``--n`` held-out
problems, one sample each at the recipe's temperature, for every ``--eval_seeds`` seed
(``python -m tinyzero.eval``), so each accuracy is a mean with its spread. It prints one row
per run and the verdict against issue 12's targets (every run: accuracy >= 2.5x its base,
thinking >= 3x, truncation <= 0.10; the median run: accuracy >= 4x), and writes ``grid.json``
and ``table.md`` into ``--out`` with the command, machine and date. Finished runs and evals
are reused, so a killed grid continues where it stopped. ``--jobs 2`` runs two commands at
once: on a 2-core machine the grid takes about half the time, and each run's figures are the
same as alone (a run gives the same bits at any thread count; tests/test_nano.py for
pretraining; for GRPO, the main command at two threads gave the one-thread grid run p0-g42
exactly, benchmarks/results/RESULTS.md, 2026-12-02).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tinyzero.cli import ArgumentParser  # noqa: E402

TARGETS = {"every_accuracy_x": 2.5, "every_thinking_x": 3.0, "median_accuracy_x": 4.0, "every_truncation_max": 0.10}
# The price of the gain, shown beside it (eval keys; search/* for nano Countdown).
PRICE = (
    ("format_rate", "well-formed"),
    ("truncation_rate", "truncated"),
    ("search/arithmetic_ok", "arithmetic ok"),
    ("search/hit_yes_rate", "hit -> yes"),
    ("search/check_faithful", "faithful checks"),
    ("self_check_rate", "self-checks"),
    ("search/self_check_fix_rate", "checks that fix a slip"),
    ("search/repeat_rate", "repeated attempts"),
)


def _run(cmd: list[str], log: Path) -> None:
    print("$", shlex.join(cmd), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        done = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(cmd)}; see {log}")


def pretrained(pretrain_args: list[str], log: Path) -> Path:
    """The base model ``python -m tinyzero.pretrain <pretrain_args>`` builds (or finds): its folder."""
    _run([sys.executable, "-m", "tinyzero.pretrain", *pretrain_args], log)
    line = next(line for line in log.read_text().splitlines()[::-1] if line.startswith("[tinyzero] base model: "))
    return Path(line.removeprefix("[tinyzero] base model: "))


def base_model(seed: int, pretrain_args: list[str], out: Path) -> Path:
    return pretrained(["--seed", str(seed), *pretrain_args], out / "logs" / f"pretrain-{seed}.log")


def write_record(out: Path, script: str, argv: list[str] | None, args, name: str, text: str, **fields) -> dict:
    """The benchmark's record: ``name`` (JSON: command, date, machine, args, ``fields``) and
    ``table.md`` (command, date, machine, ``text``) in ``out``; returns the JSON's dict."""
    record = {
        "command": shlex.join([sys.executable, script, *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        **fields,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(record, indent=2) + "\n")
    (out / "table.md").write_text(f"{record['command']}\n{record['date']}, {record['machine']}\n\n{text}\n")
    return record


def train_run(base: Path, seed: int, train_args: list[str], run_dir: Path, out: Path) -> dict:
    if not (run_dir / "summary.json").is_file():
        resume = ["--resume"] if run_dir.exists() else []
        cmd = [sys.executable, "-m", "tinyzero.train", "--model_name_or_path", str(base), "--seed", str(seed),
               "--output_dir", str(run_dir), *train_args, *resume]  # fmt: skip
        _run(cmd, out / "logs" / f"{run_dir.name}.log")
    return json.loads((run_dir / "summary.json").read_text())


def evaluate(model: Path, name: str, args, recipe: dict, out: Path) -> dict:
    path = out / "evals" / f"{name}.json"
    if path.is_file():  # reused only if it measured what is asked now (a grid grown from a screen)
        done = json.loads(path.read_text())
        if done.get("seeds") != list(args.eval_seeds) or done.get("problems") != args.n:
            path.unlink()
    if not path.is_file():
        cmd = [sys.executable, "-m", "tinyzero.eval", "--model", str(model), "--n", str(args.n), "--k", "1",
               "--temperature", str(recipe["temperature"]), "--max_completion_length", str(recipe["max_completion_length"]),
               "--seeds", *map(str, args.eval_seeds), "--output", str(path)]  # fmt: skip
        _run(cmd, out / "logs" / f"eval-{name}.log")
    return json.loads(path.read_text())


def recipe_keys(train_args: list[str]) -> dict:
    """The recipe's sampling settings, as the training run will use them (CLI overrides win)."""
    from tinyzero import train  # noqa: PLC0415

    _, grpo, _ = train.parse_args(train_args)
    return {"temperature": grpo.temperature, "max_completion_length": grpo.max_completion_length}


def row(pseed: int, gseed: int, base: dict, final: dict) -> dict:
    out = {
        "pretrain_seed": pseed,
        "grpo_seed": gseed,
        "base_accuracy": base["accuracy"],
        "base_accuracy_std": base.get("accuracy_std", 0.0),
        "final_accuracy": final["accuracy"],
        "final_accuracy_std": final.get("accuracy_std", 0.0),
        "accuracy_x": final["accuracy"] / base["accuracy"] if base["accuracy"] else float("inf"),
        "base_thinking": base["thinking_length"],
        "final_thinking": final["thinking_length"],
        "thinking_x": final["thinking_length"] / base["thinking_length"] if base["thinking_length"] else float("inf"),
    }
    for key, _ in PRICE:
        out[f"base {key}"], out[f"final {key}"] = base.get(key), final.get(key)
    return out


def verdict(rows: list[dict]) -> dict:
    acc = [r["accuracy_x"] for r in rows]
    return {
        "runs": len(rows),
        "median_accuracy_x": statistics.median(acc),
        "worst_accuracy_x": min(acc),
        "worst_thinking_x": min(r["thinking_x"] for r in rows),
        "worst_truncation": max(r["final truncation_rate"] for r in rows),
        "every_accuracy_ok": min(acc) >= TARGETS["every_accuracy_x"],
        "every_thinking_ok": min(r["thinking_x"] for r in rows) >= TARGETS["every_thinking_x"],
        "median_accuracy_ok": statistics.median(acc) >= TARGETS["median_accuracy_x"],
        "every_truncation_ok": max(r["final truncation_rate"] for r in rows) <= TARGETS["every_truncation_max"],
    }


def _f(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(rows: list[dict], v: dict, n_eval_seeds: int) -> str:
    head = ["pretrain seed", "GRPO seed", f"accuracy base -> final (mean ± std over {n_eval_seeds} seeds)", "x",
            "thinking base -> final (chars)", "x", *(label for _, label in PRICE)]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            str(r["pretrain_seed"]), str(r["grpo_seed"]),
            f"{_f(r['base_accuracy'])} ± {_f(r['base_accuracy_std'])} -> {_f(r['final_accuracy'])} ± {_f(r['final_accuracy_std'])}",
            _f(r["accuracy_x"], 2),
            f"{_f(r['base_thinking'], 0)} -> {_f(r['final_thinking'], 0)}", _f(r["thinking_x"], 2),
            *(f"{_f(r.get(f'base {k}'), 2)} -> {_f(r.get(f'final {k}'), 2)}" for k, _ in PRICE),  # '-': an older record
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    ok = lambda b: "met" if b else "MISSED"  # noqa: E731
    lines += [
        "",
        f"median run: accuracy {v['median_accuracy_x']:.2f}x its base (target >= {TARGETS['median_accuracy_x']}x: {ok(v['median_accuracy_ok'])})",
        f"worst run: accuracy {v['worst_accuracy_x']:.2f}x (target >= {TARGETS['every_accuracy_x']}x: {ok(v['every_accuracy_ok'])}), "
        f"thinking {v['worst_thinking_x']:.2f}x (target >= {TARGETS['every_thinking_x']}x: {ok(v['every_thinking_ok'])}), "
        f"truncation {v['worst_truncation']:.3f} (target <= {TARGETS['every_truncation_max']}: {ok(v['every_truncation_ok'])})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(prog="python benchmarks/robustness.py", description=__doc__.split("\n\n")[0])
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
    record = write_record(out, "benchmarks/robustness.py", argv, args, "grid.json", text, rows=rows, verdict=v)
    print(text)
    return record


if __name__ == "__main__":
    main()
