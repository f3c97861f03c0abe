"""A grid of training runs measured alike: the commands, the held-out evals, the record.

The experiments in ``benchmarks/experiments/`` (the seed grid, the variants, distillation) are
grids of commands run as subprocesses, each with its own log, and reused when finished, so a
killed grid continues where it stopped:

- ``pretrained`` / ``base_model``: a base model built (or found) by ``python -m tinyzero.pretrain``;
- ``train_run``: ``python -m tinyzero.train`` on a base model, resumed if it was cut off;
- ``evaluate``: ``python -m tinyzero.eval`` of a model on ``args.n`` held-out problems, one sample
  each at the recipe's temperature, for every ``args.eval_seeds`` seed, so each accuracy is a mean
  with its spread;
- ``write_record``: the experiment's JSON record and ``table.md``, with the command, machine and date.

And what a seed grid's record is read with (notebook 05 reads the recorded grids this way):
``row`` (one run against its base), ``verdict`` (the grid against ``TARGETS``), ``table``.
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
from pathlib import Path

from tinyzero.paths import REPO

# The seed grid's targets (issue 12): every run's accuracy and thinking x its base, the median run's accuracy.
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


def run(cmd: list[str], log: Path) -> None:
    """Run a command in the checkout, its output into ``log``; a failure ends the grid with one line."""
    print("$", shlex.join(cmd), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        done = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(cmd)}; see {log}")


def pretrained(pretrain_args: list[str], log: Path) -> Path:
    """The base model ``python -m tinyzero.pretrain <pretrain_args>`` builds (or finds): its folder."""
    run([sys.executable, "-m", "tinyzero.pretrain", *pretrain_args], log)
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
    """The run's summary.json: trained (or resumed) unless it is there."""
    if not (run_dir / "summary.json").is_file():
        resume = ["--resume"] if run_dir.exists() else []
        cmd = [sys.executable, "-m", "tinyzero.train", "--model_name_or_path", str(base), "--seed", str(seed),
               "--output_dir", str(run_dir), *train_args, *resume]  # fmt: skip
        run(cmd, out / "logs" / f"{run_dir.name}.log")
    return json.loads((run_dir / "summary.json").read_text())


def evaluate(model: Path, name: str, args, recipe: dict, out: Path) -> dict:
    """The eval report of ``model`` (``args.n`` problems, ``args.eval_seeds``), saved as ``evals/<name>.json``."""
    path = out / "evals" / f"{name}.json"
    if path.is_file():  # reused only if it measured what is asked now (a grid grown from a screen)
        done = json.loads(path.read_text())
        if done.get("seeds") != list(args.eval_seeds) or done.get("problems") != args.n:
            path.unlink()
    if not path.is_file():
        cmd = [sys.executable, "-m", "tinyzero.eval", "--model", str(model), "--n", str(args.n), "--k", "1",
               "--temperature", str(recipe["temperature"]), "--max_completion_length", str(recipe["max_completion_length"]),
               "--seeds", *map(str, args.eval_seeds), "--output", str(path)]  # fmt: skip
        run(cmd, out / "logs" / f"eval-{name}.log")
    return json.loads(path.read_text())


def recipe_keys(train_args: list[str]) -> dict:
    """The recipe's sampling settings, as the training run will use them (CLI overrides win)."""
    from tinyzero import train  # noqa: PLC0415 (torch and TRL: only when a grid runs)

    _, grpo, _ = train.parse_args(train_args)
    return {"temperature": grpo.temperature, "max_completion_length": grpo.max_completion_length}


def row(pseed: int, gseed: int, base: dict, final: dict) -> dict:
    """One run of a seed grid: its final model's eval against its base model's."""
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
    """A seed grid's rows against ``TARGETS``."""
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


def fmt(x, digits: int = 3) -> str:
    """A figure of a table, '-' when missing (an older record)."""
    return "-" if x is None else f"{x:.{digits}f}"


def table(rows: list[dict], v: dict, n_eval_seeds: int) -> str:
    """A seed grid's markdown table and its verdict lines."""
    head = ["pretrain seed", "GRPO seed", f"accuracy base -> final (mean ± std over {n_eval_seeds} seeds)", "x",
            "thinking base -> final (chars)", "x", *(label for _, label in PRICE)]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            str(r["pretrain_seed"]), str(r["grpo_seed"]),
            f"{fmt(r['base_accuracy'])} ± {fmt(r['base_accuracy_std'])} -> {fmt(r['final_accuracy'])} ± {fmt(r['final_accuracy_std'])}",
            fmt(r["accuracy_x"], 2),
            f"{fmt(r['base_thinking'], 0)} -> {fmt(r['final_thinking'], 0)}", fmt(r["thinking_x"], 2),
            *(f"{fmt(r.get(f'base {k}'), 2)} -> {fmt(r.get(f'final {k}'), 2)}" for k, _ in PRICE),
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
