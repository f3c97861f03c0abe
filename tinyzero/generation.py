"""Sampling from a model, and the one held-out evaluation built on it.

- ``sampling_config``: the sampling GRPOTrainer uses, as a ``GenerationConfig``.
- ``generate``: batched sampling with left padding and no gradients, under a fixed seed that
  leaves the caller's random state alone; each completion comes back as text, token ids and
  whether it was cut off by the length limit.
- ``evaluate_model``: k samples per problem, graded by the task's ``grade`` (the reward's
  definition of correct); accuracy (pass@1), pass@k, the statistics of ``tinyzero.stats``
  and, for nano Countdown traces, the search figures of ``tinyzero.nano.traces``. The
  training callback, ``python -m tinyzero.eval`` and the notebooks all call it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig

from tinyzero.nano.traces import search_summary
from tinyzero.stats import SUMMARY_KEYS, analyze, pass_at_k, summarize
from tinyzero.tasks.grading import thinking_text


@dataclass(frozen=True)
class Generation:
    text: str  # decoded like TRL does for rewards (special tokens skipped)
    token_ids: list[int]  # up to and including the end-of-sequence token, if any
    truncated: bool  # hit max_new_tokens without an end-of-sequence token


def eos_ids(generation_config: GenerationConfig) -> list[int]:
    eos = generation_config.eos_token_id
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


def sampling_config(
    model,
    tokenizer,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    stop_strings: list[str] | None = None,
) -> GenerationConfig:
    """The sampling GRPOTrainer uses (no top-k unless asked); temperature 0 means greedy.
    ``stop_strings`` end a completion after the string, kept (``tinyzero.stops``)."""
    eos = [tokenizer.eos_token_id] + [e for e in eos_ids(model.generation_config) if e != tokenizer.eos_token_id]
    kwargs: dict[str, Any] = {"do_sample": temperature > 0}
    if temperature > 0:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k)
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
        disable_compile=True,
        stop_strings=stop_strings or None,
        **kwargs,
    )


def render_prompts(tokenizer, prompts: Sequence[Any]) -> tuple[list[str], bool]:
    """Prompt strings as the model sees them, and whether they are chat-rendered.

    Conversational prompts (message lists, the "chat" template) go through the tokenizer's
    chat template, as GRPOTrainer does; their text already holds any special tokens.
    """
    if all(isinstance(p, str) for p in prompts):
        return list(prompts), False
    rendered = [
        p if isinstance(p, str) else tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    return rendered, True


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    generation_config: GenerationConfig,
    num_return_sequences: int = 1,
    batch_size: int = 64,
    seed: int = 0,
    sample: Callable[..., torch.Tensor] | None = None,
) -> list[list[Generation]]:
    """``num_return_sequences`` sampled completions per prompt; ``batch_size`` counts sequences.
    ``sample(model, **inputs, generation_config=...)`` replaces ``model.generate`` if given
    (``tinyzero.fastgen.sampler``, or a trainer's ``sample``)."""
    device = next(model.parameters()).device
    eos = set(eos_ids(generation_config))
    max_new = generation_config.max_new_tokens
    prompts_per_batch = max(1, batch_size // num_return_sequences)
    prompts, chat = render_prompts(tokenizer, prompts)
    config = copy.deepcopy(generation_config)
    config.num_return_sequences = num_return_sequences
    config.use_cache = True  # activation checkpointing turns the model's default off
    # generate reads stop strings only through the tokenizer; after a stop it pads the row
    stop = {"tokenizer": tokenizer} if config.stop_strings else {}
    pad = generation_config.pad_token_id
    was_training = model.training
    model.eval()
    out: list[list[Generation]] = []
    # fork_rng: the same seed gives the same samples every eval, and training's own random
    # stream continues as if the eval had not happened.
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for start in range(0, len(prompts), prompts_per_batch):
                chunk = list(prompts[start : start + prompts_per_batch])
                enc = tokenizer(
                    chunk, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=not chat
                ).to(device)
                if sample is None:
                    seqs = model.generate(**enc, generation_config=config, **stop)
                else:
                    seqs = sample(model, **enc, generation_config=config, **stop)
                completions = seqs[:, enc["input_ids"].shape[1] :].tolist()
                for p in range(len(chunk)):
                    group = []
                    for ids in completions[p * num_return_sequences : (p + 1) * num_return_sequences]:
                        end = next((i for i, t in enumerate(ids) if t in eos), None)
                        ids = ids if end is None else ids[: end + 1]
                        if stop and end is None and pad is not None:  # a pad that is not eos: the stop's fill
                            while ids and ids[-1] == pad:
                                ids = ids[:-1]
                        text = tokenizer.decode(ids, skip_special_tokens=True)
                        group.append(Generation(text, ids, end is None and len(ids) >= max_new))
                    out.append(group)
    finally:
        model.train(was_training)
    return out


def evaluate_model(
    model,
    tokenizer,
    task,
    rows: Sequence[dict[str, Any]],
    generation_config: GenerationConfig,
    k: int = 1,
    batch_size: int = 64,
    seed: int = 0,
    search: bool = False,
    shard: tuple[int, int] = (0, 1),
    gather=None,
    sample: Callable[..., torch.Tensor] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(summary, per-completion records) for k samples on each row (rows carry ``prompt``).

    summary: ``problems``, ``k``, every ``SUMMARY_KEYS`` figure over all samples
    (``accuracy`` is pass@1, the mean fraction of correct samples), ``pass@k`` when k > 1, and
    with ``search`` the nano trace figures (``search/*``; Countdown in the nano format only).

    With several processes, ``shard=(rank, world_size)`` samples every world_size-th problem
    only, and ``gather`` (e.g. ``accelerate.utils.gather_object``) collects every process's
    records, so each problem is sampled once and every process returns the same figures.
    Each process samples its problems under ``seed``, so a sharded eval is another draw of the
    same measurement: it agrees with one process within sampling noise, not token for token.
    ``sample`` replaces ``model.generate`` (see ``generate``).
    """
    rank, world = shard
    mine = list(range(rank, len(rows), world))
    groups = generate(model, tokenizer, [rows[i]["prompt"] for i in mine], generation_config, k, batch_size, seed, sample)
    records = []
    for i, group in zip(mine, groups, strict=True):
        for j, g in enumerate(group):
            verdict = task.grade(g.text, rows[i])
            records.append({"problem": i, "sample": j, "completion": g.text, "correct": verdict.correct,
                            "reason": verdict.reason, **analyze(g.text, g.truncated)})
    if gather is not None and world > 1:
        records = sorted(gather(records), key=lambda r: (r["problem"], r["sample"]))
    return summarize_records(records, rows, k, search), records


def summarize_records(records: list[dict[str, Any]], rows: Sequence[dict[str, Any]], k: int, search: bool) -> dict[str, float]:
    """The summary of ``evaluate_model`` from its per-completion records."""
    summary: dict[str, float] = {"problems": len(rows), "k": k}
    figures = summarize(records, [r["correct"] for r in records])
    summary.update({key: figures[key] for key in SUMMARY_KEYS})
    if k > 1:
        per_problem = [0] * len(rows)
        for r in records:
            per_problem[r["problem"]] += r["correct"]
        summary[f"pass@{k}"] = sum(pass_at_k(k, c, k) for c in per_problem) / len(rows)
    if search:
        thinking = [thinking_text(r["completion"]) for r in records]
        summary.update(search_summary(thinking, [rows[r["problem"]]["target"] for r in records]))
    return summary
