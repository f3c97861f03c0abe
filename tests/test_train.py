"""End-to-end tests of ``python -m tinyzero.train`` on a tiny nano model (offline, seconds)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import RUN_ARGS, dataset_args
from safetensors.torch import load_file

from tinyzero import train
from tinyzero.checkpoints import find_checkpoint, last_complete_checkpoint
from tinyzero.models import load_model_and_tokenizer
from tinyzero.runfiles import METRICS_FILE, SAMPLES_FILE, read_jsonl
from tinyzero.stats import SUMMARY_KEYS

REPO = Path(__file__).resolve().parent.parent
EVAL_KEYS = {f"eval/{k}" for k in SUMMARY_KEYS}
TRAIN_KEYS = {f"train/{k}" for k in SUMMARY_KEYS} | {"loss", "reward", "rewards/format_reward/mean"}


def test_smoke_run_updates_weights_and_writes_metrics(tiny_run, nano_model_dir):
    out, summary = tiny_run
    before = load_file(nano_model_dir / "model.safetensors")
    after = load_file(out / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before), "GRPO did not change the weights"

    rows = read_jsonl(out / METRICS_FILE)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]  # one row per step, step 0 = before training
    for r in rows:
        assert (EVAL_KEYS <= r.keys()) == (r["step"] in (0, 2, 4)), r["step"]
        assert ("eval/search/hit_yes_rate" in r) == (r["step"] in (0, 2, 4)), r["step"]  # nano Countdown
        assert (TRAIN_KEYS <= r.keys()) == (r["step"] > 0), r["step"]
        assert (r.get("time/eval", 0) > 0) == (r["step"] in (0, 2, 4)), r["step"]  # what the eval took
    assert rows[1]["reward_std"] > 0, "the primed model should give rewards that vary"
    for r in rows[1:]:  # the step-time split: sampling <= making the batch <= the whole step
        assert 0 < r["time/generation"] <= r["time/rollout"] <= r["step_time"], r

    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    logged = [r for r in state["log_history"] if "train_runtime" not in r]
    assert [r["step"] for r in logged] == [0, 1, 2, 3, 4]
    assert logged[2]["eval/accuracy"] == rows[2]["eval/accuracy"]

    samples = read_jsonl(out / SAMPLES_FILE)
    assert [(s["step"], s["index"]) for s in samples] == [(0, 0), (0, 1), (2, 0), (2, 1), (4, 0), (4, 1)]
    assert summary["steps"] == 4 and summary["eval_steps"] == [0, 4]
    assert json.loads((out / "summary.json").read_text())["steps"] == 4


def test_trained_run_and_checkpoints_load_as_nano(tiny_run):
    out, _ = tiny_run
    from tinyzero.nano.tokenizer import is_nano_tokenizer

    for folder in (out, out / "checkpoint-2"):
        model, tokenizer = load_model_and_tokenizer(str(folder))
        assert is_nano_tokenizer(tokenizer) and tokenizer.padding_side == "left", folder  # the nano tokenizer
        assert tokenizer.decode(tokenizer("<think>3+4</think>")["input_ids"]) == "<think>3+4</think>"


def test_default_recipe_is_the_nano_cpu_run():
    script, grpo, model = train.parse_args([])
    assert model.model_name_or_path == "nano"
    assert script.dataset_name == "countdown_nano" and script.template == "nano"
    assert grpo.use_cpu and not grpo.bf16 and not grpo.activation_checkpointing
    assert grpo.report_to == [] and grpo.output_dir == "runs/nano"
    # 4 prompts x 16 completions a step: TRL's batch sizes count completions; 16 prompts sampled
    # at once, for 4 steps
    assert grpo.per_device_train_batch_size // grpo.num_generations == 4
    assert grpo.generation_batch_size == 4 * grpo.per_device_train_batch_size
    script, grpo, _ = train.parse_args(["--max_steps", "7", "--eval_every", "3"])
    assert grpo.max_steps == 7 and script.eval_every == 3


# GRPO recipes only: the pretrain and distill recipes have their own commands and tests.
@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes").glob("*.yaml") if not any(w in p.name for w in ("pretrain", "distill"))))
def test_recipes_use_only_known_keys(recipe):
    # Parsing a GPU recipe on a CPU machine fails on bf16, so the keys are checked directly.
    from trl import GRPOConfig, ModelConfig

    known = {f.name for cls in (train.TinyZeroArguments, GRPOConfig, ModelConfig) for f in dataclasses.fields(cls)}
    keys = set(yaml.safe_load((REPO / "recipes" / recipe).read_text())) - {"env"}
    assert keys <= known, f"unknown keys in {recipe}: {sorted(keys - known)}"


def test_checkpoint_selection(tmp_path):
    assert find_checkpoint(tmp_path, resume=False) is None  # empty: fresh run
    for step, state in ((2, "{}"), (4, "{}"), (6, '{"log_hist')):  # 6 was killed while saving
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    with pytest.raises(ValueError, match="--resume"):  # never silently mix two runs
        find_checkpoint(tmp_path, resume=False)
    assert find_checkpoint(tmp_path, resume=True) == str(tmp_path / "checkpoint-4")
    assert not (tmp_path / "checkpoint-6").exists()  # half-written: removed
    assert (tmp_path / "checkpoint-2").exists()  # older complete ones stay


def test_resume_after_sigkill_loses_and_repeats_no_step(nano_model_dir, tmp_path):
    out = tmp_path / "run"
    args = [
        sys.executable, "-m", "tinyzero.train",
        "--model_name_or_path", str(nano_model_dir), "--output_dir", str(out), *dataset_args(tmp_path),
        *RUN_ARGS, "--max_steps", "8",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Kill as soon as checkpoint-2 is complete AND a later step has been logged, so
        # that the resumed run must both drop rows (step 3+) and redo them.
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            logged = [r["step"] for r in read_jsonl(out / METRICS_FILE)]
            if (out / "checkpoint-2" / "trainer_state.json").is_file() and max(logged, default=0) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"run ended before it could be killed:\n{proc.stderr.read()[-3000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = max(r["step"] for r in read_jsonl(out / METRICS_FILE))
    assert killed_at < 8

    resumed = subprocess.run(
        [*args, "--resume", "--plot", "true"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    steps = [r["step"] for r in read_jsonl(out / METRICS_FILE)]
    assert steps == list(range(9)), f"killed at step {killed_at}, metrics.jsonl has steps {steps}"
    evals = [r["step"] for r in read_jsonl(out / METRICS_FILE) if "eval/accuracy" in r]
    assert evals == [0, 2, 4, 6, 8]
    assert sorted({s["step"] for s in read_jsonl(out / SAMPLES_FILE)}) == [0, 2, 4, 6, 8]
    assert json.loads((out / "summary.json").read_text())["steps"] == 8
    assert (out / "plots" / "overview.png").is_file() and (out / "samples.md").is_file()
    assert "held-out accuracy" in resumed.stdout


def test_task_must_match_the_dataset(tmp_path):
    args = train.parse_args(["--task", "multiplication", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="holds countdown problems, not multiplication"):
        train.main(*args)


def test_sharded_eval_samples_each_problem_once_and_agrees(nano_model_dir):
    from tinyzero.generation import evaluate_model, sampling_config
    from tinyzero.models import load_model_and_tokenizer
    from tinyzero.tasks import TASKS
    from tinyzero.tasks.countdown import generate as make_problems

    model, tokenizer = load_model_and_tokenizer(str(nano_model_dir))
    task = TASKS["countdown"]
    rows = [{**r, "prompt": task.prompt(r, "nano")} for r in make_problems(7, num_count=3, num_range=(1, 9), seed=3)]
    config = sampling_config(model, tokenizer, max_new_tokens=6, temperature=0)  # greedy: shards must agree exactly
    whole, whole_records = evaluate_model(model, tokenizer, task, rows, config)
    shards = [evaluate_model(model, tokenizer, task, rows, config, shard=(r, 3))[1] for r in range(3)]
    assert sorted(r["problem"] for s in shards for r in s) == list(range(7))  # each problem once
    assert all(len({r["problem"] % 3 for r in s}) == 1 for s in shards)  # a shard is every 3rd problem
    gathered, records = evaluate_model(model, tokenizer, task, rows, config, shard=(0, 3),
                                       gather=lambda mine: [r for s in shards for r in s])
    assert records == whole_records and gathered == whole


@pytest.mark.slow
def test_two_processes_write_one_metrics_file(nano_model_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "tinyzero.train", "--model_name_or_path", str(nano_model_dir), "--output_dir", str(out),
        *dataset_args(tmp_path), *RUN_ARGS, "--max_steps", "2", "--plot", "false",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_jsonl(out / METRICS_FILE)
    assert [r["step"] for r in rows] == [0, 1, 2]  # one row per step, not one per process
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 2]
    samples = read_jsonl(out / SAMPLES_FILE)
    assert len(samples) == 2 * 2 and sorted({s["index"] for s in samples}) == [0, 1]  # eval_samples=2, twice
    assert done.stdout.count("[tinyzero] done:") == 1


def test_rloo_runs_the_same_recipe_and_updates_weights(nano_model_dir, tmp_path):
    """--trainer rloo: TRL's RLOOTrainer on the same recipe, rewards, evals and metrics file."""

    out = tmp_path / "rloo"
    argv = ["--trainer", "rloo", "--model_name_or_path", str(nano_model_dir), "--output_dir", str(out),
            *dataset_args(tmp_path), *RUN_ARGS, "--max_steps", "2", "--eval_every", "2"]
    script_args, grpo_args, model_args = train.parse_args(argv)
    rloo = train.rloo_config(grpo_args)
    assert rloo.beta == grpo_args.beta == 0.0  # the recipe's, not RLOOConfig's default 0.05
    assert (rloo.num_generations, rloo.steps_per_generation, rloo.learning_rate) == (
        grpo_args.num_generations, grpo_args.steps_per_generation, grpo_args.learning_rate)
    train.main(script_args, grpo_args, model_args)
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    before, after = load_file(nano_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before), "RLOO did not change the weights"
    rows = read_jsonl(out / METRICS_FILE)
    assert [r["step"] for r in rows] == [0, 1, 2] and EVAL_KEYS <= rows[2].keys() and TRAIN_KEYS <= rows[1].keys()


def test_sampling_threads_apply_inside_generate_only():
    # recipes/nano.yaml: the update at two threads, sampling at one (tinyzero.trainer's sampling_threads).
    import torch

    from tinyzero.trainer import TinyZeroMixin

    class Model:
        def generate(self, *args, **kwargs):
            seen.append(torch.get_num_threads())
            if kwargs.get("fail"):
                raise RuntimeError("boom")
            return kwargs["input_ids"]

    trainer = TinyZeroMixin.__new__(TinyZeroMixin)  # the mixin's sampling methods, without a TRL trainer
    trainer.sampling_threads, trainer._sample = 1, None
    seen, before = [], torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = Model()
        assert trainer.sample(model, 3) == 3 and seen == [1] and torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            trainer.sample(model, 3, fail=True)
        assert seen == [1, 1] and torch.get_num_threads() == 2  # restored after an error too
    finally:
        torch.set_num_threads(before)


def test_stop_strings_reach_generate_with_the_tokenizer():
    """generate reads a config's stop strings only through ``tokenizer=``: the trainer's regular
    sampling path passes its own (and nothing when the config has none)."""
    from transformers import GenerationConfig

    from tinyzero.trainer import TinyZeroMixin

    trainer = TinyZeroMixin.__new__(TinyZeroMixin)
    trainer.processing_class = tokenizer = object()
    trainer.generation_config = GenerationConfig(max_new_tokens=4, stop_strings=["</answer>"])
    assert trainer._generate_kwargs() == {"tokenizer": tokenizer}
    trainer.generation_config = GenerationConfig(max_new_tokens=4)
    assert trainer._generate_kwargs() == {}


def test_update_buckets_give_the_same_first_step(nano_model_dir, tmp_path, monkeypatch):
    """--update_buckets (tinyzero.buckets) scores the batch in length buckets: the same
    completions, rewards, loss and gradient norm as TRL's own scoring, to float rounding."""
    from tinyzero import buckets

    calls = []
    bucketed = buckets.bucketed

    def spy(score, n):
        wrapped = bucketed(score, n)

        def counted(*args, **kwargs):
            calls.append(n)
            return wrapped(*args, **kwargs)

        return counted

    monkeypatch.setattr(buckets, "bucketed", spy)
    first = {}
    for n in (1, 4):
        out = tmp_path / f"b{n}"
        argv = ["--model_name_or_path", str(nano_model_dir), "--output_dir", str(out), *dataset_args(tmp_path),
                *RUN_ARGS, "--max_steps", "1", "--eval_every", "0", "--save_strategy", "no", "--update_buckets", str(n)]
        train.main(*train.parse_args(argv))
        first[n] = next(r for r in read_jsonl(out / METRICS_FILE) if r["step"] == 1)
    assert calls and set(calls) == {4}  # installed only when asked for
    assert first[1]["grad_norm"] > 0
    assert first[4]["reward"] == first[1]["reward"] and first[4]["train/completion_length"] == first[1]["train/completion_length"]
    assert first[4]["loss"] == pytest.approx(first[1]["loss"], abs=1e-6)
    assert first[4]["grad_norm"] == pytest.approx(first[1]["grad_norm"], rel=1e-4)


def test_build_trainer_is_the_commands_trainer(nano_model_dir, tmp_path):
    """build_trainer: tinyzero's trainer class with its callbacks bound and the stock progress bar
    gone, a caller's callbacks after tinyzero's own, and a caller's training set in place of the
    recipe's; the sampler and buckets go in through the constructor."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import ProgressCallback

    from tinyzero.callbacks import HeldOutEvalCallback
    from tinyzero.trainer import TinyZeroGRPOTrainer, TinyZeroRLOOTrainer

    class Extra(TrainerCallback):
        pass

    argv = ["--model_name_or_path", str(nano_model_dir), "--output_dir", str(tmp_path / "b"), *dataset_args(tmp_path),
            *RUN_ARGS, "--sampler", "fastgen", "--update_buckets", "3", "--sampling_threads", "1"]
    script_args, grpo_args, model_args = train.parse_args(argv)
    rows = [dict(r) for r in train.load_task_data(script_args.dataset_name, split="train", template="nano").select(range(3))]
    extra = Extra()
    trainer = train.build_trainer(script_args, grpo_args, model_args, callbacks=[extra], train_dataset=Dataset.from_list(rows))
    assert type(trainer) is TinyZeroGRPOTrainer
    assert len(trainer.train_dataset) == 3 and trainer.processing_class.pad_token_id is not None
    cbs = trainer.callback_handler.callbacks
    assert extra in cbs and cbs.index(extra) > max(i for i, c in enumerate(cbs) if type(c).__module__ == "tinyzero.callbacks")
    assert not any(type(c) is ProgressCallback for c in cbs)
    assert next(c for c in cbs if isinstance(c, HeldOutEvalCallback)).trainer is trainer
    assert (trainer.sampler, trainer.update_buckets, trainer.sampling_threads) == ("fastgen", 3, 1)
    script_args, grpo_args, model_args = train.parse_args([*argv, "--trainer", "rloo"])
    assert type(train.build_trainer(script_args, grpo_args, model_args)) is TinyZeroRLOOTrainer
