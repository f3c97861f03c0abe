"""Shared fixtures: a tiny random-init nano model folder and one short training run.

Everything is offline and built in temporary folders: no pretraining, no downloads, nothing
written under runs/. The run fixture is shared by the training, eval and plot tests so that
GRPO runs once per session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch the network; a Hub id in a test must fail fast, not wait on a timeout.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tiny models on a shared CPU: one thread is several times faster than two that contend with
# other processes (measured: 30 s -> 4 s for the model fixture). Inherited by subprocesses.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The longest tests, started first (in this order) so that the two workers of ``-n 2``
# (pyproject.toml) end together: a long test that starts late keeps one core busy while the
# other idles. From the --durations of a serial fresh-clone run (2026-12-02, 34 min in all).
LONGEST_FIRST = [
    "test_nano.py::test_a_rebuild_of_the_shipped_base_model_matches_it",  # 864 s
    "test_notebooks.py::test_notebook_runs[06_length_bias.ipynb]",  # 152 s
    "test_notebooks.py::test_notebook_runs[05_aha_moment.ipynb]",  # 137 s
    "test_notebooks.py::test_notebook_runs[07_beyond_r1_zero.ipynb]",  # 110 s
]


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((i for i, name in enumerate(LONGEST_FIRST) if item.nodeid.endswith(name)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order


# Small enough that a GRPO step on 8 completions takes well under a second on one core.
TINY = dict(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=64)

# A short run: 2 prompts x 4 completions per step, 4 steps, eval at 0, 2 and 4, checkpoints at
# 2 and 4. Strings, as on a command line.
RUN_ARGS = [
    "--max_steps", "4",
    "--num_generations", "4",
    "--per_device_train_batch_size", "8",
    "--steps_per_generation", "1",  # sample every step, so every step row carries the train/* figures
    "--max_completion_length", "24",
    "--eval_every", "2",
    "--eval_size", "6",
    "--eval_batch_size", "6",
    "--eval_samples", "2",
    "--save_steps", "2",
    "--learning_rate", "1e-2",
    "--logging_steps", "1",
    "--plot", "false",
]


def make_nano_model(path: Path, prime_steps: int = 40, seed: int = 0) -> Path:
    """A tiny nano model folder, briefly taught the answer format (a few seconds).

    A purely random model never writes an answer block, so every reward is 0, every
    advantage is 0 and GRPO cannot move the weights. ``prime_steps`` of next-token training
    on a few well-formed traces (half of them with a wrong answer) make it answer sometimes,
    so rewards vary inside each group as they do with the real pretrained base model.
    """
    import random

    from tinyzero.nano.tokenizer import EOS
    from tinyzero.tasks import countdown

    rng = random.Random(seed)
    docs = []
    for row in countdown.generate(64, num_count=3, num_range=(1, 9), target_range=(1, 30), seed=seed) if prime_steps else []:
        nums = list(row["nums"])
        rng.shuffle(nums)
        expr = row["solution"].replace(" ", "") if rng.random() < 0.5 else "+".join(map(str, nums))
        prompt = countdown.prompt(row["nums"], row["target"], "nano")
        docs.append(f"{prompt}{expr} yes</think>\n<answer>{expr}</answer>{EOS}")
    return fit_tiny_nano(path, docs, prime_steps, seed)


def fit_tiny_nano(path: Path, docs: list[str], steps: int, seed: int = 0) -> Path:
    """A tiny nano model (``TINY``) trained ``steps`` full-batch steps on ``docs``, saved to path."""
    import torch
    from transformers import Qwen2ForCausalLM

    from tinyzero.nano.build import model_config
    from tinyzero.nano.tokenizer import build_tokenizer, save_tokenizer

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    model = Qwen2ForCausalLM(model_config(len(tokenizer), **TINY))
    if steps:
        enc = tokenizer(docs, return_tensors="pt", padding=True, padding_side="right")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(steps):
            model(**enc, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    save_tokenizer(tokenizer, path)
    model.save_pretrained(path)
    return path


def dataset_args(tmp: Path) -> list[str]:
    """The shipped nano Countdown data when prepared, else a small generated file."""
    from tinyzero.tasks.data import shipped_datasets

    if "countdown_nano" in shipped_datasets():
        return ["--dataset_name", "countdown_nano"]
    import json

    from tinyzero.tasks import countdown

    path = tmp / "countdown.jsonl"
    rows = countdown.generate(200, num_count=3, num_range=(1, 9), target_range=(1, 30), seed=1)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["--dataset_name", str(path)]


@pytest.fixture(scope="session")
def nano_model_dir(tmp_path_factory) -> Path:
    """A random-init nano model folder (model + nano tokenizer + marker)."""
    return make_nano_model(tmp_path_factory.mktemp("nano-model"))


@pytest.fixture(scope="session")
def tiny_run(nano_model_dir, tmp_path_factory) -> tuple[Path, dict]:
    """(output_dir, summary) of a 4-step GRPO run on the nano recipe with the tiny model."""
    from tinyzero import train

    tmp = tmp_path_factory.mktemp("run")
    out = tmp / "nano"
    argv = ["--model_name_or_path", str(nano_model_dir), "--output_dir", str(out), *dataset_args(tmp), *RUN_ARGS]
    summary = train.main(*train.parse_args(argv))
    return out, summary
