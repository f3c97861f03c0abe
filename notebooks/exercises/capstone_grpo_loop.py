"""Capstone: the GRPO loop in plain torch, no TRL. Fill in the six functions marked YOUR CODE.

You have written GRPO's pieces (exercises 02-04 and 07) and seen one step by hand (notebook 02).
Here you write the whole loop and watch nano learn Countdown:

    for each step:
        sample a group of G completions for each of P prompts      (sample_groups)
        score them with the task's grader                           (score)
        advantages: reward minus its group's mean                   (group_advantages)
        for each of a few updates on that batch:
            per-token log-probs of the completions                  (per_token_logps)
            clipped surrogate, averaged over the batch's tokens     (clipped_loss)
            backward, clip the gradient norm, AdamW step            (train)

Run it from the repository root (one thread, a few CPU minutes; an eval before and after):

    python notebooks/exercises/capstone_grpo_loop.py

Your loop should at least double nano's held-out accuracy (the same eval as the recipe's:
tinyzero.generation.evaluate_model on the 500 test problems at the recipe's temperature, a mean
over two sampling seeds). The reference solution is ``capstone_grpo_loop_solution.py``, beside
``checks.py``: don't open it first. ``python notebooks/exercises/capstone_grpo_loop_solution.py
--record`` trains it under several training seeds and writes ``capstone_record.json`` here.

The settings are the nano recipe's (recipes/nano.yaml): groups of 16, the DAPO token mean,
no std scaling (Dr. GRPO), no KL term, clip 0.2, temperature 0.6, 256-token completions, a
constant learning rate and a gradient norm clipped at 1; the batch is sampled once and used
for several updates, as the recipe's ``steps_per_generation`` does. What differs is the size of
the run (``Config``): a few minutes instead of the recipe's 100 steps.

**Your loop against TRL's.** The recorded runs of the recipe with TRL
(benchmarks/results/lr2e-4/metrics/*.metrics.jsonl, base model p0) evaluate every 25 steps:
held-out accuracy 0.064 at step 0, 0.136-0.150 at step 25 (1,600 sampled completions), 0.21-0.23
at step 50 and 0.27-0.30 at step 100. The record of this loop (capstone_record.json, written by
``--record``) holds its accuracy after its own number of sampled completions, and its training
reward per step; put them side by side. Plain torch and TRL climb the same curve because they
compute the same loss (notebook 02 asserts that to 1e-5): a library is this loop, with care.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

import torch

from tinyzero.fastgen import sampler
from tinyzero.models import load_model_and_tokenizer
from tinyzero.generation import evaluate_model, generate, sampling_config  # noqa: F401 (generate: for sample_groups)
from tinyzero.tasks import TASKS
from tinyzero.tasks.data import load_task_data

HERE = Path(__file__).resolve().parent
RECORD = HERE / "capstone_record.json"
TASK = TASKS["countdown"]
SAMPLE = sampler("fastgen")  # tinyzero's fast sampler (the recipe's), for generate's and evaluate_model's sample=


@dataclass
class Config:
    prompts_per_step: int = 16     # P prompts per sampled batch
    group_size: int = 16           # G completions per prompt
    updates_per_batch: int = 4     # optimizer steps on each sampled batch (the recipe's steps_per_generation)
    steps: int = 14                # sampled batches; the loop sees steps * P * G completions
    learning_rate: float = 3e-4
    max_grad_norm: float = 1.0
    epsilon: float = 0.2           # the PPO clip range
    temperature: float = 0.6       # sampling, training log-probs and eval alike (the recipe's)
    max_completion_length: int = 256
    seed: int = 0                  # the training seed: prompts, sampling, nothing else
    eval_seeds: list[int] = field(default_factory=lambda: [0, 1])
    eval_size: int = 500           # the whole test split
    threads: int = 1


# ---------------------------------------------------------------------------------------------
# The six functions to write. Each says what it gets and what it returns.
# ---------------------------------------------------------------------------------------------


def sample_groups(model, tokenizer, rows: list[dict], cfg: Config, seed: int) -> dict:
    """Sample cfg.group_size completions per row with ``tinyzero.generation.generate``.

    Return a batch dict, each prompt repeated G times in a row (row 0 x G, row 1 x G, ...):
      ``prompt_ids``, ``prompt_mask``: (P*G, Lp) left-padded prompt tokens and their mask;
      ``completion_ids``, ``completion_mask``: (P*G, Lc) right-padded completion tokens, the mask
        1 on every sampled token up to and including the end-of-sequence token;
      ``texts``: the P*G completion texts; ``rows``: the P*G rows (for the grader).
    Use ``sampling_config(model, tokenizer, cfg.max_completion_length, cfg.temperature)``, and
    pass ``sample=SAMPLE`` to ``generate`` (the recipe's fast sampler; without it, HF's is slower).
    """
    # YOUR CODE HERE
    raise NotImplementedError("sample_groups")


def score(texts: list[str], rows: list[dict]) -> torch.Tensor:
    """One reward per completion: the task's own reward (``TASK.reward``, TRL's contract: the
    completions, then the columns ``TASK.columns`` as keyword lists). Shape (P*G,), float32."""
    # YOUR CODE HERE
    raise NotImplementedError("score")


def group_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Reward minus its group's mean (no std scaling, as the recipe's scale_rewards: none)."""
    # YOUR CODE HERE
    raise NotImplementedError("group_advantages")


def per_token_logps(model, batch: dict, temperature: float) -> torch.Tensor:
    """(P*G, Lc) log-probs of the completion tokens under ``model`` (with gradient), from the
    logits divided by the sampling temperature. Remember the shift by one position."""
    # YOUR CODE HERE
    raise NotImplementedError("per_token_logps")


def clipped_loss(logps, old_logps, advantages, mask, epsilon: float, num_tokens: float) -> torch.Tensor:
    """The clipped surrogate per token (exercise 03), summed over the completion tokens (``mask``)
    and divided by ``num_tokens`` (exercise 07's DAPO normaliser, the recipe's loss_type: dapo).
    A scalar to minimise."""
    # YOUR CODE HERE
    raise NotImplementedError("clipped_loss")


def train(model, tokenizer, train_rows, cfg: Config, impl: ModuleType | None = None) -> list[dict]:
    """The loop. ``cfg.steps`` times:

    - take ``cfg.prompts_per_step`` training rows at random (a ``torch.Generator`` seeded with
      ``cfg.seed``), sample their groups (a different sampling seed each step) and score them;
    - compute the advantages, and the log-probs of the batch under the policy that sampled it
      (no gradient: the ratio's denominator, ``old_logps``);
    - split the batch into ``cfg.updates_per_batch`` minibatches of whole groups and take one
      AdamW step on each (lr ``cfg.learning_rate``, weight_decay 0, the gradient norm clipped at
      ``cfg.max_grad_norm``), with ``num_tokens`` = the batch's completion tokens divided by the
      number of updates, so that the updates together weigh every token once, as TRL does.

    Call the functions through ``impl`` (``impl.sample_groups`` and so on: the module you write
    in; None means this one). Return one dict per step with at least ``step``, ``reward`` (the
    batch's mean reward) and ``accuracy`` (the fraction of rewards equal to 1.0)."""
    # YOUR CODE HERE
    raise NotImplementedError("train")


# ---------------------------------------------------------------------------------------------
# The scaffold: model, data, the project's eval, the record. Nothing to write below.
# ---------------------------------------------------------------------------------------------


def load_nano():
    """The shipped nano base model and its tokenizer."""
    return load_model_and_tokenizer("nano")


def held_out(model, tokenizer, cfg: Config) -> list[float]:
    """Held-out accuracy under each eval seed: the project's one eval, as the recipe runs it."""
    rows = load_task_data("countdown_nano", "test", template="nano").select(range(cfg.eval_size))
    config = sampling_config(model, tokenizer, cfg.max_completion_length, cfg.temperature)
    return [evaluate_model(model, tokenizer, TASK, rows, config, batch_size=250, seed=s, sample=SAMPLE)[0]["accuracy"]
            for s in cfg.eval_seeds]


def run(impl: ModuleType, cfg: Config, base: list[float] | None = None) -> dict:
    """Train a fresh nano model with ``impl``'s functions; accuracy before and after, and the curve."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_nano()
    train_rows = [dict(r) for r in load_task_data("countdown_nano", "train", template="nano")]
    if base is None:
        base = held_out(model, tokenizer, cfg)
    start = time.perf_counter()
    curve = impl.train(model, tokenizer, train_rows, cfg, impl)
    train_s = time.perf_counter() - start
    final = held_out(model, tokenizer, cfg)
    def mean(xs):
        return sum(xs) / len(xs)

    return {"seed": cfg.seed, "base_accuracy": base, "final_accuracy": final,
            "base_mean": mean(base), "final_mean": mean(final), "ratio": mean(final) / mean(base),
            "completions_sampled": cfg.steps * cfg.prompts_per_step * cfg.group_size,
            "train_seconds": round(train_s, 1), "curve": curve}


def main(impl: ModuleType, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the GRPO loop in plain torch on nano Countdown")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds, one run each")
    parser.add_argument("--steps", type=int, default=Config.steps)
    parser.add_argument("--learning_rate", type=float, default=Config.learning_rate)
    parser.add_argument("--record", action="store_true", help=f"write the runs to {RECORD.name}")
    args = parser.parse_args(argv)
    runs, base = [], None
    for seed in args.seeds:
        cfg = Config(seed=seed, steps=args.steps, learning_rate=args.learning_rate)
        result = run(impl, cfg, base)
        base = result["base_accuracy"]  # the base model and eval seeds are the same for every run
        runs.append(result)
        print(f"seed {seed}: held-out accuracy {result['base_mean']:.3f} -> {result['final_mean']:.3f} "
              f"({result['ratio']:.2f}x; per eval seed {base} -> {result['final_accuracy']}), "
              f"training {result['train_seconds']} s", flush=True)
    if args.record:
        RECORD.write_text(json.dumps({
            "command": "python " + " ".join([str(Path(sys.argv[0]).as_posix()), *(argv if argv is not None else sys.argv[1:])]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}", "config": asdict(cfg) | {"seed": args.seeds}, "runs": runs,
        }, indent=1) + "\n")
        print(f"wrote {RECORD}")


if __name__ == "__main__":
    main(sys.modules[__name__])
