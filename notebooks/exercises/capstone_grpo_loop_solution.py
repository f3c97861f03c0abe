"""The reference solution of the capstone (capstone_grpo_loop.py): the six functions, filled in.

    python notebooks/exercises/capstone_grpo_loop_solution.py                 # one training seed
    python notebooks/exercises/capstone_grpo_loop_solution.py --seeds 0 1 --record

``--record`` writes capstone_record.json (the command, the machine, each training seed's held-out
accuracy per eval seed before and after, and its curve). tests/test_capstone.py runs this file.
"""

from __future__ import annotations

import sys

import capstone_grpo_loop as scaffold
import torch
from capstone_grpo_loop import SAMPLE, TASK, Config

from tinyzero.generation import generate, sampling_config


def sample_groups(model, tokenizer, rows: list[dict], cfg: Config, seed: int) -> dict:
    config = sampling_config(model, tokenizer, cfg.max_completion_length, cfg.temperature)
    groups = generate(model, tokenizer, [r["prompt"] for r in rows], config, cfg.group_size, batch_size=256, seed=seed,
                      sample=SAMPLE)
    sampled = [g for group in groups for g in group]  # row 0 x G, row 1 x G, ...
    group_rows = [r for r in rows for _ in range(cfg.group_size)]
    enc = tokenizer([r["prompt"] for r in group_rows], return_tensors="pt", padding=True, padding_side="left")
    width = max(len(g.token_ids) for g in sampled)
    pad = tokenizer.pad_token_id
    return {
        "prompt_ids": enc["input_ids"],
        "prompt_mask": enc["attention_mask"],
        "completion_ids": torch.tensor([g.token_ids + [pad] * (width - len(g.token_ids)) for g in sampled]),
        "completion_mask": torch.tensor([[1] * len(g.token_ids) + [0] * (width - len(g.token_ids)) for g in sampled]),
        "texts": [g.text for g in sampled],
        "rows": group_rows,
    }


def score(texts: list[str], rows: list[dict]) -> torch.Tensor:
    columns = {c: [r[c] for r in rows] for c in TASK.columns}
    return torch.tensor(TASK.reward(texts, **columns), dtype=torch.float32)


def group_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    grouped = rewards.view(-1, group_size)
    return (grouped - grouped.mean(dim=1, keepdim=True)).view(-1)


def per_token_logps(model, batch: dict, temperature: float) -> torch.Tensor:
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    n = batch["completion_ids"].shape[1]
    # The logits at position t predict token t + 1: keep the n + 1 last, drop the very last.
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=n + 1).logits[:, :-1]
    logps = (logits / temperature).log_softmax(dim=-1)
    return logps.gather(-1, batch["completion_ids"].unsqueeze(-1)).squeeze(-1)


def clipped_loss(logps, old_logps, advantages, mask, epsilon: float, num_tokens: float) -> torch.Tensor:
    ratio = torch.exp(logps - old_logps)
    a = advantages.unsqueeze(1)
    per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * a)
    return (per_token * mask).sum() / num_tokens


def train(model, tokenizer, train_rows, cfg: Config, impl=None) -> list[dict]:
    impl = impl or sys.modules[__name__]
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    curve = []
    for step in range(cfg.steps):
        picked = torch.randint(len(train_rows), (cfg.prompts_per_step,), generator=gen).tolist()
        batch = impl.sample_groups(model, tokenizer, [train_rows[i] for i in picked], cfg, seed=cfg.seed * 100_003 + step)
        rewards = impl.score(batch["texts"], batch["rows"])
        advantages = impl.group_advantages(rewards, cfg.group_size)
        mask = batch["completion_mask"].float()
        with torch.no_grad():  # the sampling policy's log-probs: the ratio's denominator for every update
            old_logps = impl.per_token_logps(model, batch, cfg.temperature)
        # Whole groups per update; each minibatch's token sum over its share of the batch's tokens,
        # so the updates together weigh every token of the batch once (TRL's dapo normaliser).
        num_tokens = mask.sum().clamp(min=1) / cfg.updates_per_batch
        per_update = len(rewards) // cfg.updates_per_batch
        for u in range(cfg.updates_per_batch):
            part = slice(u * per_update, (u + 1) * per_update)
            mini = {k: v[part] for k, v in batch.items() if isinstance(v, torch.Tensor)}
            logps = impl.per_token_logps(model, mini, cfg.temperature)
            loss = impl.clipped_loss(logps, old_logps[part], advantages[part], mask[part], cfg.epsilon, num_tokens)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
        curve.append({"step": step + 1, "reward": round(rewards.mean().item(), 4),
                      "accuracy": round((rewards == 1.0).float().mean().item(), 4),
                      "completion_length": round(mask.sum(1).mean().item(), 1)})
        print(f"step {step + 1}: reward {curve[-1]['reward']:.3f}, accuracy {curve[-1]['accuracy']:.3f}, "
              f"length {curve[-1]['completion_length']}", flush=True)
    return curve


if __name__ == "__main__":
    scaffold.main(sys.modules[__name__])
