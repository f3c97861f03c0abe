"""The main command's speed, phase by phase, against its floor; an old checkout side by side.

    python benchmarks/speed.py                       # this checkout
    python benchmarks/speed.py --old 9c7fb1f         # and that commit (or a checkout folder), same run
    python benchmarks/speed.py --old 9c7fb1f --busy  # also this checkout with one busy process alongside
    python benchmarks/speed.py --old 9c7fb1f --full  # the two real main commands, each phase beside its floor

What it runs, in each checkout, as a new user would (its own recipes, its own thread policy,
a fresh TINYZERO_HOME so the base model is built from scratch, subprocesses with that
checkout first on PYTHONPATH):

1. ``python -m tinyzero.pretrain --max_steps P``: pretraining, P of the recipe's steps;
2. ``python -m tinyzero.train --pretrain_config <that model's recipe> --max_steps K
   --eval_every K``: K GRPO steps of the recipe on that model, with the held-out evals at
   step 0 and K (TRL's ``step_time`` and tinyzero's ``time/generation`` per step come from
   its metrics.jsonl);
3. ``python -m tinyzero.eval`` on that model: the held-out eval (500 problems, 1 sample, the
   recipe's temperature and batch), minus the same command on 1 problem (process start and
   model load), so the row is the eval's own cost;
4. the main command's base model: a checkout that ships the recipe's base model (tinyzero/nano/
   shipped/) loads it, timed as ``python -m tinyzero.pretrain`` in a fresh home; for one that
   does not, its pretraining is projected from step 1.

Then per checkout the main command (``python -m tinyzero.train`` from a fresh clone: the
base model, GRPO with its evals) is projected to the recipe's own step counts from those
per-step figures; the scaled-down runs themselves are printed too. The old/new ratio is
taken phase by phase, so the day's machine speed cancels out.

Floors (this checkout's model; matmul rate measured here for each phase's own shapes, the
best of 1 and 2 threads; see ``gpu_step.py`` for the same arithmetic on a GPU):
- pretraining: 3 forward passes (forward + backward) over the tokens the batches hold, no
  padding: 2 x body weights + 2 x hidden x vocab (lm head) per token + attention;
- GRPO update: per step, the policy's forward + backward (3 forwards) over its 64
  completions and prompts, one more forward for TRL's old log-probabilities
  (steps_per_generation > 1) and one for the reference model when beta > 0;
- sampling: one decode step per generated token: 2 x body weights + lm head per token +
  attention over its context (``tinyzero.fastgen.flop_floor``), at the matmul rate of the
  decode step's batch (256 rows for GRPO, the eval batch for the eval);
- ratio = measured / floor. What is left above the floor is per-call overhead (Python, the
  kernels' launch cost at these tiny shapes), which the floor does not count.

With ``--full`` it runs, instead of scaled phases, each checkout's real main command (``python
-m tinyzero.train`` in a fresh home: the old one pretrains its base model, this one loads the
shipped one) and splits its wall time into the base model, the GRPO steps' sampling and the
rest of each step (TRL's ``step_time``, tinyzero's ``time/generation``), and the remainder
(held-out evals, start, saving, plots). That is the like-for-like figure when the two
checkouts' models write completions of different lengths (the scaled phases run on each
checkout's own 300-step model, whose completions need not resemble the real run's). The floor
is for this checkout's own work: FLOPs at its run's mean completion lengths.

With ``--busy`` this checkout's scaled main command runs again beside one ``while True:
pass`` process (a second busy program on the 2 cores): the slowdown must stay <= 2x.
Timings depend on what else runs: the load average is printed with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default=None, help="a commit (exported with git archive) or a checkout folder to compare")
    ap.add_argument("--busy", action="store_true", help="also run this checkout beside one busy process")
    ap.add_argument("--pretrain_steps", type=int, default=600, help="pretraining steps run (the recipe's are projected)")
    ap.add_argument("--grpo_steps", type=int, default=8, help="GRPO steps run (a multiple of steps_per_generation)")
    ap.add_argument("--eval_n", type=int, default=500, help="problems in the eval phase")
    ap.add_argument("--pretrain_set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra pretraining recipe keys for both checkouts (tests: a tiny corpus)")
    ap.add_argument("--train_set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra tinyzero.train flags for both checkouts (tests: short completions)")
    ap.add_argument("--full", action="store_true",
                    help="run each checkout's real main command (python -m tinyzero.train, fresh home) instead of scaled phases")
    ap.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    return ap.parse_args(argv)


# --- running a checkout -------------------------------------------------------------------


def export_commit(commit: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run(checkout: Path, home: Path, argv: list[str], log: Path, busy: bool = False) -> tuple[float, str]:
    """Run ``python argv`` in a checkout; return (wall seconds, output). A failure stops the benchmark."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "TINYZERO_HOME": str(home)}
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # each checkout's own thread policy is what is measured
        env.pop(key, None)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, *argv], cwd=checkout, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    out = proc.stdout + proc.stderr
    log.write_text(out)
    if proc.returncode != 0:
        tail = out.strip().splitlines()[-3:]
        raise SystemExit(f"speed.py: error: {' '.join(argv[:3])} failed in {checkout} (exit {proc.returncode}; log {log}): {' | '.join(tail)}")
    return wall, out


def recipe_value(path: Path, key: str):
    import yaml

    return (yaml.safe_load(path.read_text()) or {}).get(key)


def train_setting(checkout: Path, args, key: str, default, kind=int):
    """A GRPO setting as the scaled runs use it: from --train_set, else the checkout's recipe."""
    sets = dict(item.split("=", 1) for item in args.train_set)
    return kind(sets[key]) if key in sets else (recipe_value(checkout / "recipes" / "nano.yaml", key) or default)


def measure_checkout(label: str, checkout: Path, work: Path, args, busy: bool = False) -> dict:
    """The three phases of the scaled main command in one checkout."""
    home = work / label / "home"
    shutil.rmtree(work / label, ignore_errors=True)
    home.mkdir(parents=True)
    logs = work / label
    load = os.getloadavg()[0]

    # 1. pretraining, from a recipe that differs from the checkout's in max_steps (and --pretrain_set) only
    recipe = checkout / "recipes" / "nano-pretrain.yaml"
    text = re.sub(r"^max_steps:.*$", f"max_steps: {args.pretrain_steps}", recipe.read_text(), flags=re.M)
    for item in args.pretrain_set:
        key, value = item.split("=", 1)
        text = re.sub(rf"^{key}:.*$", "", text, flags=re.M) + f"\n{key}: {value}\n"
    scaled = logs / "nano-pretrain.yaml"
    scaled.write_text(text)
    wall, out = run(checkout, home, ["-m", "tinyzero.pretrain", "--config", str(scaled)], logs / "pretrain.log", busy)
    found = re.findall(r"'train_runtime': '?([0-9.]+)", out)
    if not found:
        raise SystemExit(f"speed.py: error: no train_runtime in the pretraining output ({logs / 'pretrain.log'})")
    base = next((home / "nano-base").glob("*/pretrain.json")).parent
    pre = {
        "wall_s": wall,
        "train_s": float(found[-1]),
        "steps": args.pretrain_steps,
        "recipe_steps": recipe_value(recipe, "max_steps"),
        "train_loss": json.loads((base / "pretrain.json").read_text())["train_loss"],
    }
    pre["step_s"] = pre["train_s"] / pre["steps"]
    pre["fixed_s"] = wall - pre["train_s"]  # imports, the corpus, tokenizing it, saving

    # 2. K GRPO steps with evals at 0 and K
    run_dir = logs / "grpo"
    train_argv = ["-m", "tinyzero.train", "--pretrain_config", str(scaled), "--max_steps", str(args.grpo_steps),
                  "--eval_every", str(args.grpo_steps), "--save_strategy", "no", "--output_dir", str(run_dir)]
    for item in args.train_set:
        key, value = item.split("=", 1)
        train_argv += [f"--{key}", value]
    wall, _ = run(checkout, home, train_argv, logs / "train.log", busy)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in rows if "step_time" in r]
    gen = [r["time/generation"] for r in rows if "time/generation" in r]
    lengths = [r["completions/mean_length"] for r in rows if "completions/mean_length" in r]
    evals = [r for r in rows if "eval/completion_length" in r]
    nano = checkout / "recipes" / "nano.yaml"
    grpo = {
        "wall_s": wall,
        "steps": len(steps),
        "step_s": statistics.mean(r["step_time"] for r in steps),
        "generation_s": sum(gen) / len(steps),  # per step (sampling happens every steps_per_generation steps)
        "completion_len": statistics.mean(lengths) if lengths else None,
        "eval_completion_len": statistics.mean(r["eval/completion_length"] for r in evals) if evals else None,
        "recipe_steps": recipe_value(nano, "max_steps"),
        "recipe_eval_every": recipe_value(nano, "eval_every"),
    }
    grpo["update_s"] = grpo["step_s"] - grpo["generation_s"]  # rewards, old log-probabilities, loss, backward, optimizer
    grpo["rest_s"] = wall - grpo["step_s"] * grpo["steps"]  # process start, model load, 2 evals, saving

    # 3. the eval alone: 500 problems minus 1 problem (the difference is the eval's own work)
    temperature = train_setting(checkout, args, "temperature", 1.0, float)
    batch = train_setting(checkout, args, "eval_batch_size", 256)
    eval_argv = ["-m", "tinyzero.eval", "--model", str(base), "--k", "1", "--temperature", str(temperature), "--batch_size", str(batch)]
    full, _ = run(checkout, home, [*eval_argv, "--n", str(args.eval_n)], logs / "eval.log", busy)
    one, _ = run(checkout, home, [*eval_argv, "--n", "1"], logs / "eval1.log", busy)
    ev = {"wall_s": full, "start_s": one, "eval_s": max(full - one, 0.0), "n": args.eval_n}
    # The training run's evals are of eval_size problems (the recipe's 500), not of --eval_n.
    ev["train_eval_n"] = train_setting(checkout, args, "eval_size", 500)
    ev["train_eval_s"] = ev["eval_s"] * ev["train_eval_n"] / args.eval_n

    # The main command's base model: a checkout that ships the recipe's model loads it (timed:
    # the pretrain command in a fresh home); one that does not pretrains it (projected).
    shipped = any((checkout / "tinyzero" / "nano" / "shipped").glob("*/pretrain.json"))
    if shipped:
        pre["main_base_s"], _ = run(checkout, logs / "home-main", ["-m", "tinyzero.pretrain"], logs / "pretrain-main.log", busy)
    else:
        pre["main_base_s"] = pre["fixed_s"] + pre["step_s"] * pre["recipe_steps"]
    pre["shipped"] = shipped

    # the main command at the recipe's own counts, from the per-step figures
    n_evals = 1 + -(-grpo["recipe_steps"] // grpo["recipe_eval_every"])  # step 0, every eval_every, the end
    scaled_main = pre["wall_s"] + grpo["wall_s"]
    main = (pre["main_base_s"]
            + (grpo["rest_s"] - 2 * ev["train_eval_s"]) + n_evals * ev["train_eval_s"]
            + grpo["step_s"] * grpo["recipe_steps"])
    return {"label": label, "checkout": str(checkout), "load_at_start": load, "pretrain": pre, "grpo": grpo,
            "eval": ev, "n_evals": n_evals, "scaled_main_s": scaled_main, "main_projected_s": main, "base_model": str(base)}

def measure_main(label: str, checkout: Path, work: Path, args, busy: bool = False) -> dict:
    """The main command itself, ``python -m tinyzero.train`` in a fresh home, as a new user runs
    it (with --train_set's flags, for tests): its wall time split into the base model, the GRPO
    steps' sampling and the rest of each step, and the remainder (evals, start, saving, plots).
    The work each phase did is the run's own (its completion lengths), so two checkouts' rows
    compare what their main commands really do."""
    home = work / label / "home"
    shutil.rmtree(work / label, ignore_errors=True)
    home.mkdir(parents=True)
    run_dir = work / label / "main"
    load = os.getloadavg()[0]
    argv = ["-m", "tinyzero.train", "--output_dir", str(run_dir)]
    for item in args.train_set:
        key, value = item.split("=", 1)
        argv += [f"--{key}", value]
    wall, _ = run(checkout, home, argv, work / label / "main.log", busy)
    built = list((home / "nano-base").glob("*/pretrain.json"))  # none: the shipped model was loaded
    pretrain_s = sum(json.loads(p.read_text())["pretrain_seconds"] for p in built)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in rows if "step_time" in r]
    evals = [r for r in rows if "eval/completion_length" in r]
    acc = [r["eval/accuracy"] for r in evals if "eval/accuracy" in r]
    step_s = sum(r["step_time"] for r in steps)
    gen_s = sum(r.get("time/generation", 0.0) for r in steps)
    return {
        "label": label, "checkout": str(checkout), "load_at_start": load, "wall_s": wall,
        "pretrained": bool(built), "pretrain_s": pretrain_s,
        "steps": len(steps), "step_s": step_s, "generation_s": gen_s, "update_s": step_s - gen_s,
        "rest_s": wall - pretrain_s - step_s,  # the held-out evals, process start, model load, saving, plots
        # the evals' own seconds (tinyzero's time/eval; None where a checkout does not log it)
        "eval_s": sum(r["time/eval"] for r in evals) if evals and all("time/eval" in r for r in evals) else None,
        "n_evals": len(evals), "eval_size": train_setting(checkout, args, "eval_size", 500),
        "completion_len": statistics.mean(r["completions/mean_length"] for r in steps if "completions/mean_length" in r),
        "eval_completion_len": statistics.mean(r["eval/completion_length"] for r in evals) if evals else None,
        "accuracy_first": acc[0] if acc else None, "accuracy_last": acc[-1] if acc else None,
        "run_dir": str(run_dir),
    }


def report_main(new: dict, old: dict | None, busy: dict | None, args) -> str:
    """The main commands side by side, each phase beside its floor (for the new one's own work:
    FLOPs at its mean completion lengths, at the matmul rate measured for those shapes)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(new["run_dir"])
    fl = grpo_eval_floors(config, args, new["completion_len"], new["eval_completion_len"], new["eval_size"])
    g, u, e = fl["generation_step"], fl["update_step"], fl["eval"]
    n, o = new["steps"], old or {}
    lines = ["| phase | work (new) | floor s | new s | new / floor |" + (" old s | old / new |" if old else "")]
    lines.append("|" + " --- |" * (7 if old else 5))

    def row(name, work, floor_s, key):
        new_s, old_s = new[key], o.get(key)
        cells = [name, work, _g(floor_s) if floor_s else "", _g(new_s), f"{new_s / floor_s:.1f}x" if floor_s else ""]
        if old:
            cells += [_g(old_s), f"{old_s / new_s:.2f}x" if new_s > 0 else ""]
        lines.append("| " + " | ".join(cells) + " |")

    base = "pretrained" if new["pretrained"] else "the shipped one, loaded: its time is in the rest"
    old_base = f"; old: {'pretrained' if o.get('pretrained') else 'loaded'}" if old else ""
    row(f"base model (new: {base}{old_base})", "", None, "pretrain_s")
    row(f"GRPO sampling, {n} steps", f"{g['tokens'] * n:.0f} tokens, {g['flops'] * n / 1e9:.0f} GFLOP", g["s"] * n, "generation_s")
    row(f"GRPO rest of the step (rewards, log-probs, update), {n} steps",
        f"{u['tokens'] * n:.0f} tokens x {u['forwards']} passes, {u['flops'] * n / 1e9:.0f} GFLOP", u["s"] * n, "update_s")
    k = new["n_evals"]
    row(f"the rest: {k} held-out evals of {new['eval_size']}, start, load, save, plots",
        f"{e['tokens'] * k:.0f} tokens, {e['flops'] * k / 1e9:.0f} GFLOP (evals)", e["s"] * k, "rest_s")
    if new.get("eval_s") is not None:  # the rest split (new only): the evals against their floor
        cells = [f"- of which the {k} held-out evals (time/eval)", "", _g(e["s"] * k), _g(new["eval_s"]), f"{new['eval_s'] / (e['s'] * k):.1f}x"]
        lines.append("| " + " | ".join(cells + ([""] * 2 if old else [])) + " |")
        cells = ["- of which start, imports, load, save, plots (no FLOP floor)", "", "", _g(new["rest_s"] - new["eval_s"]), ""]
        lines.append("| " + " | ".join(cells + ([""] * 2 if old else [])) + " |")
    floor = (g["s"] + u["s"]) * n + e["s"] * k
    row("main command, wall", "", floor, "wall_s")
    for m in (new, old):
        if m:
            lines.append(f"\n{m['label']}: {m['steps']} GRPO steps, mean completion {m['completion_len']:.0f} tokens in training, "
                         f"{m['eval_completion_len'] or 0:.0f} in the evals; held-out accuracy {m['accuracy_first']} -> "
                         f"{m['accuracy_last']} (the run's own eval, one sampling seed); load average at start {m['load_at_start']:.2f}")
    rates = ", ".join(f"{k.split('_')[0]} {v['rate'] / 1e9:.0f}" for k, v in fl.items())
    lines.append(f"matmul GFLOP/s measured for each phase's shapes (best of 1 and 2 threads): {rates}")
    bw = copy_rate()
    kv_g, kv_e = g["kv_bytes"] * n / bw, e["kv_bytes"] * k / bw
    lines.append(
        f"the decode steps' KV-cache reads, a memory floor the FLOP floor leaves out: GRPO sampling {g['kv_bytes'] * n / 1e9:.0f} GB, "
        f"evals {e['kv_bytes'] * k / 1e9:.0f} GB, at {bw / 1e9:.0f} GB/s (copy, best of 1 and 2 threads) {_g(kv_g)} s and {_g(kv_e)} s; "
        f"against FLOPs + reads: sampling {new['generation_s'] / (g['s'] * n + kv_g):.1f}x"
        + (f", evals {new['eval_s'] / (e['s'] * k + kv_e):.1f}x" if new.get("eval_s") else "")
    )
    if busy:
        ratio = busy["wall_s"] / new["wall_s"]
        lines.append(f"\nbusy machine (one `while True: pass` alongside): main command {_g(busy['wall_s'])} s vs "
                     f"{_g(new['wall_s'])} s idle = {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'MISSED'})")
    return "\n".join(lines)


# --- floors -----------------------------------------------------------------------------


def forward_flops(config, n: float) -> float:
    """One forward over a sequence of n tokens, logits at every position."""
    from tinyzero.fastgen import flop_floor

    f = flop_floor(config, [int(round(n))], [0])
    return f["matmul"] + f["attention"] + 2 * config.hidden_size * config.vocab_size * n


def matmul_rate(config, rows: int) -> float:
    """FLOP/s of the model's matmuls at this many rows, the best of 1 and 2 threads."""
    import torch
    from gpu_step import measure_matmul_rate, model_matmul_shapes

    spec = {"hidden_size": config.hidden_size, "intermediate": config.intermediate_size, "kv_heads": config.num_key_value_heads,
            "heads": config.num_attention_heads, "num_layers": config.num_hidden_layers, "vocab_size": config.vocab_size}
    return best_of_1_and_2_threads(lambda: measure_matmul_rate(torch.device("cpu"), torch.float32, model_matmul_shapes(spec, rows))[0])


def copy_rate() -> float:
    """Bytes/s a copy moves here (read + write), the best of 1 and 2 threads."""
    from sampling_speed import copy_gbps

    return best_of_1_and_2_threads(lambda: copy_gbps() * 1e9)


def best_of_1_and_2_threads(measure) -> float:
    """The larger of ``measure()`` at 1 and at 2 torch threads (the thread count is restored)."""
    import torch

    before = torch.get_num_threads()
    best = 0.0
    for threads in (1, 2):
        torch.set_num_threads(threads)
        best = max(best, measure())
    torch.set_num_threads(before)
    return best


def floors(new: dict, args) -> dict:
    """Floor seconds of each phase, for the work this checkout's run did."""
    from transformers import AutoConfig

    from tinyzero.nano import build as nano_pretrain
    from tinyzero.nano import tokenizer as nano_tokenizer

    base = Path(new["base_model"])
    config = AutoConfig.from_pretrained(base)
    recipe = json.loads((base / "pretrain.json").read_text())["config"]
    cfg = nano_pretrain.PretrainConfig(**{**recipe, "num_traces": min(recipe["num_traces"], 20000)})
    tok = nano_tokenizer.build_tokenizer()
    lens = [len(ids) for ids in tok(nano_pretrain.build_corpus(cfg))["input_ids"]]  # eos included
    doc_len = statistics.mean(lens)
    batch = recipe["batch_size"]
    pre_flops = 3 * forward_flops(config, doc_len) * batch  # per step: forward + backward
    pre_rate = matmul_rate(config, int(batch * doc_len))

    return {
        "pretrain_step": {"flops": pre_flops, "tokens": batch * doc_len, "rate": pre_rate, "s": pre_flops / pre_rate},
        **grpo_eval_floors(config, args, new["grpo"]["completion_len"], new["grpo"]["eval_completion_len"], args.eval_n),
    }


def grpo_eval_floors(config, args, completion_len: float, eval_completion_len: float | None, eval_n: int) -> dict:
    """Floor seconds of a GRPO step's sampling and update and of one eval of eval_n problems,
    for completions of these mean lengths (this checkout's recipe settings)."""
    from tinyzero.fastgen import flop_floor
    from tinyzero.nano import tokenizer as nano_tokenizer
    from tinyzero.tasks.data import load_task_data

    tok = nano_tokenizer.build_tokenizer()
    rows = train_setting(REPO, args, "per_device_train_batch_size", 8)
    spg = train_setting(REPO, args, "steps_per_generation", 1)
    beta = train_setting(REPO, args, "beta", 0.0, float)
    prompts = load_task_data("countdown_nano", "test", template="nano")
    prompt_len = statistics.mean(len(tok(prompts[i]["prompt"])["input_ids"]) for i in range(200))
    comp = completion_len
    seq = forward_flops(config, prompt_len + comp)
    forwards = 3 + (1 if spg > 1 else 0) + (1 if beta > 0 else 0)
    upd_flops = forwards * seq * rows
    upd_rate = matmul_rate(config, int(rows * (prompt_len + comp)))
    gen_rows = rows * spg
    gen = flop_floor(config, [int(prompt_len)] * gen_rows, [int(round(comp))] * gen_rows)
    gen_rate = matmul_rate(config, gen_rows)
    eval_batch = train_setting(REPO, args, "eval_batch_size", 256)
    ev_comp = eval_completion_len or comp
    ev = flop_floor(config, [int(prompt_len)] * eval_n, [int(round(ev_comp))] * eval_n)
    ev_rate = matmul_rate(config, min(eval_batch, eval_n))
    # a decode step also reads every live row's cached keys and values: memory, not FLOPs
    from sampling_speed import kv_read_bytes

    gen_kv = kv_read_bytes(config, [int(prompt_len)] * gen_rows, [int(round(comp))] * gen_rows) / spg
    ev_kv = kv_read_bytes(config, [int(prompt_len)] * eval_n, [int(round(ev_comp))] * eval_n)
    return {
        "generation_step": {"flops": gen["total"] / spg, "tokens": gen["tokens"] / spg, "rate": gen_rate, "s": gen["total"] / spg / gen_rate, "kv_bytes": gen_kv},
        "update_step": {"flops": upd_flops, "tokens": rows * (prompt_len + comp), "rate": upd_rate, "s": upd_flops / upd_rate, "forwards": forwards},
        "eval": {"flops": ev["total"], "tokens": ev["tokens"], "rate": ev_rate, "s": ev["total"] / ev_rate, "kv_bytes": ev_kv},
    }


# --- report -----------------------------------------------------------------------------


def _g(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def report(new: dict, old: dict | None, busy: dict | None, fl: dict) -> str:
    lines = []
    head = "| phase | work | floor s | new s | new / floor |" + (" old s | old / new |" if old else "")
    lines += [head, "|" + " --- |" * (head.count("|") - 1)]

    def row(name, work, floor_s, new_s, old_s=None):
        # A phase can measure 0 s (the eval minus its 1-problem run, at tiny sizes): no ratio then.
        cells = [name, work, _g(floor_s) if floor_s is not None else "", _g(new_s), f"{new_s / floor_s:.1f}x" if floor_s else ""]
        if old:
            cells += [_g(old_s) if old_s is not None else "", f"{old_s / new_s:.2f}x" if old_s is not None and new_s > 0 else ""]
        lines.append("| " + " | ".join(cells) + " |")

    p, g, e = fl["pretrain_step"], fl["generation_step"], fl["eval"]
    u = fl["update_step"]
    o = old or {}
    row("pretraining, per step", f"{p['tokens']:.0f} tokens, {p['flops'] / 1e9:.1f} GFLOP", p["s"], new["pretrain"]["step_s"],
        o.get("pretrain", {}).get("step_s"))
    row("pretraining, fixed (imports, corpus, save)", "", None, new["pretrain"]["fixed_s"], o.get("pretrain", {}).get("fixed_s"))
    row("GRPO step: sampling", f"{g['tokens']:.0f} tokens, {g['flops'] / 1e9:.2f} GFLOP", g["s"], new["grpo"]["generation_s"],
        o.get("grpo", {}).get("generation_s"))
    row("GRPO step: the rest (rewards, log-probs, update)", f"{u['tokens']:.0f} tokens x {u['forwards']} passes, {u['flops'] / 1e9:.2f} GFLOP",
        u["s"], new["grpo"]["update_s"], o.get("grpo", {}).get("update_s"))
    row("GRPO step", "", g["s"] + u["s"], new["grpo"]["step_s"], o.get("grpo", {}).get("step_s"))
    row(f"held-out eval ({new['eval']['n']} problems)", f"{e['tokens']:.0f} tokens, {e['flops'] / 1e9:.1f} GFLOP", e["s"],
        new["eval"]["eval_s"], o.get("eval", {}).get("eval_s"))
    n_pre, n_grpo = new["pretrain"]["recipe_steps"], new["grpo"]["recipe_steps"]
    main_floor = p["s"] * n_pre + (g["s"] + u["s"]) * n_grpo + e["s"] * new["n_evals"] * new["eval"]["train_eval_n"] / new["eval"]["n"]
    row(f"scaled main command ({new['pretrain']['steps']} + {new['grpo']['steps']} steps, 2 evals)", "", None,
        new["scaled_main_s"], o.get("scaled_main_s"))
    row("main command's base model (shipped: loaded; else pretrained, projected)", "", None,
        new["pretrain"]["main_base_s"], o.get("pretrain", {}).get("main_base_s"))
    if new["pretrain"]["shipped"]:
        main_floor -= p["s"] * n_pre
    label = f"{n_grpo} GRPO steps" + ("" if new["pretrain"]["shipped"] else f" + {n_pre} pretraining steps")
    row(f"main command, projected ({label}, {new['n_evals']} evals)", "", main_floor,
        new["main_projected_s"], o.get("main_projected_s"))
    if old and (old["pretrain"]["recipe_steps"], old["grpo"]["recipe_steps"]) != (n_pre, n_grpo):
        lines.append(f"\nold recipe: {old['pretrain']['recipe_steps']} pretraining + {old['grpo']['recipe_steps']} GRPO steps, "
                     f"{old['n_evals']} evals; the projected row uses each checkout's own recipe.")
    rates = ", ".join(f"{k.split('_')[0]} {v['rate'] / 1e9:.0f}" for k, v in fl.items())
    lines.append(f"\nmatmul GFLOP/s measured for each phase's shapes (best of 1 and 2 threads): {rates}")
    lines.append(f"pretraining train loss at {new['pretrain']['steps']} steps: new {new['pretrain']['train_loss']:.4f}"
                 + (f", old {old['pretrain']['train_loss']:.4f}" if old else ""))
    loads = f"new {new['load_at_start']:.2f}" + (f", old {old['load_at_start']:.2f}" if old else "")
    lines.append(f"load average at the start of each checkout's runs: {loads}")
    if busy:
        ratio = busy["scaled_main_s"] / new["scaled_main_s"]
        lines.append(f"\nbusy machine (one `while True: pass` alongside): scaled main command {_g(busy['scaled_main_s'])} s "
                     f"vs {_g(new['scaled_main_s'])} s idle = {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'MISSED'}); "
                     f"pretraining per step {busy['pretrain']['step_s'] / new['pretrain']['step_s']:.2f}x, "
                     f"GRPO step {busy['grpo']['step_s'] / new['grpo']['step_s']:.2f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse(argv)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="tinyzero-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# benchmarks/speed.py, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
          f"this checkout {commit}{f', old {args.old}' if args.old else ''}")
    print(f"command: python benchmarks/speed.py {' '.join(sys.argv[1:] if argv is None else argv)}", flush=True)
    measure, what, key = (measure_main, "main command", "wall_s") if args.full else (measure_checkout, "scaled main command", "scaled_main_s")
    old = None
    if args.old:
        old_dir = Path(args.old) if Path(args.old).is_dir() else export_commit(args.old, work / "old-checkout")
        old = measure("old", old_dir.resolve(), work, args)
        print(f"old: {what} {old[key]:.0f} s", flush=True)
    new = measure("new", REPO, work, args)
    print(f"new: {what} {new[key]:.0f} s", flush=True)
    busy = measure("busy", REPO, work, args, busy=True) if args.busy else None
    record = {"new": new, "old": old, "busy": busy}
    if args.full:
        print(report_main(new, old, busy, args))
    else:
        record["floors"] = floors(new, args)
        print(report(new, old, busy, record["floors"]))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
