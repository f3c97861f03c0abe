"""The capstone (notebooks/exercises/capstone_grpo_loop.py): the GRPO loop in plain torch.

- the blank's six functions raise NotImplementedError, and so does a run of the blank;
- the reference solution's pieces agree with the exercises' references (TRL 1.16's formulas);
- (slow) a run of the solution at least doubles nano's held-out accuracy, each a mean over the
  eval seeds, with the project's eval (tinyzero.generation.evaluate_model);
- the record written by ``--record`` holds at least two training seeds, each of which doubled it.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
EXERCISE_DIR = REPO / "notebooks" / "exercises"
BLANKS = ("sample_groups", "score", "group_advantages", "per_token_logps", "clipped_loss", "train")


@pytest.fixture(scope="module")
def modules():
    sys.path.insert(0, str(EXERCISE_DIR))
    try:
        yield importlib.import_module("capstone_grpo_loop"), importlib.import_module("capstone_grpo_loop_solution")
    finally:
        sys.path.remove(str(EXERCISE_DIR))


def test_the_blank_raises(modules):
    blank, _ = modules
    cfg = blank.Config(steps=1, prompts_per_step=1, group_size=2, eval_seeds=[0], eval_size=2)
    calls = {
        "sample_groups": (None, None, [], cfg, 0),
        "score": ([], []),
        "group_advantages": (torch.zeros(4), 2),
        "per_token_logps": (None, {}, 1.0),
        "clipped_loss": (None, None, None, None, 0.2, 1.0),
        "train": (None, None, [], cfg),
    }
    assert set(calls) == set(BLANKS)
    for name, args in calls.items():
        with pytest.raises(NotImplementedError):
            getattr(blank, name)(*args)
    with pytest.raises(NotImplementedError):
        blank.run(blank, cfg, base=[0.0])


def test_solution_fills_every_blank_with_the_same_signature(modules):
    import inspect

    blank, solution = modules
    for name in BLANKS:
        assert inspect.signature(getattr(blank, name)).parameters.keys() == inspect.signature(getattr(solution, name)).parameters.keys(), name


def test_solution_pieces_agree_with_trls_formulas(modules):
    sys.path.insert(0, str(EXERCISE_DIR))
    try:
        checks = importlib.import_module("checks")
    finally:
        sys.path.remove(str(EXERCISE_DIR))
    _, solution = modules
    gen = torch.Generator().manual_seed(0)
    rewards = torch.tensor([1.0, 0.1, 0.0, 0.0, 0.1, 0.1, 0.1, 0.1])
    assert torch.allclose(solution.group_advantages(rewards, 4), checks.reference_group_advantages(rewards, 4, scale=False))
    old = -torch.rand(4, 6, generator=gen) * 3
    new = old + torch.randn(4, 6, generator=gen) * 0.5
    adv = torch.randn(4, generator=gen)
    mask = torch.tensor([[1] * n + [0] * (6 - n) for n in (6, 3, 1, 4)]).float()
    per_token = checks.reference_clipped_surrogate(new, old, adv)
    expected = checks.reference_aggregate(per_token, mask, "dapo", 6)
    assert torch.isclose(solution.clipped_loss(new, old, adv, mask, 0.2, mask.sum()), expected)
    texts = ["</think>\n<answer>3*5+7</answer>", "</think>\n<answer>3+5+7</answer>", "no answer"]
    rows = [{"nums": [3, 5, 7], "target": 22}] * 3
    assert solution.score(texts, rows).tolist() == pytest.approx([1.0, 0.1, 0.0])


def test_solution_log_probs_are_the_models_own_loss(modules):
    """The shift by one: the model's next-token loss on the completion tokens is the mean of our -logps."""
    blank, solution = modules
    model, tokenizer = blank.load_nano()
    rows = [{"prompt": "Make 22 from 3 5 7.\n<think>"}] * 2
    cfg = blank.Config(group_size=2, max_completion_length=12)
    batch = solution.sample_groups(model, tokenizer, rows[:1], cfg, seed=0)
    assert batch["completion_ids"].shape[0] == 2 and len(batch["texts"]) == 2
    logps = solution.per_token_logps(model, batch, temperature=1.0)
    mask = batch["completion_mask"]
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    labels = torch.cat([torch.full_like(batch["prompt_ids"], -100), batch["completion_ids"].masked_fill(mask == 0, -100)], 1)
    with torch.no_grad():
        loss = model(input_ids=input_ids, attention_mask=torch.cat([batch["prompt_mask"], mask], 1), labels=labels).loss
    assert torch.allclose(loss, -(logps * mask).sum() / mask.sum(), atol=1e-5)


@pytest.mark.slow
def test_solution_doubles_held_out_accuracy(modules):
    """A few CPU minutes at one thread (the solution's Config): accuracy after >= 2x before."""
    blank, solution = modules
    cfg = blank.Config(seed=0)
    assert len(cfg.eval_seeds) >= 2 and cfg.eval_size == 500
    result = blank.run(solution, cfg)
    print(f"[capstone] {result['base_accuracy']} -> {result['final_accuracy']} ({result['ratio']:.2f}x), "
          f"training {result['train_seconds']} s")
    assert result["final_mean"] >= 2 * result["base_mean"], result
    assert result["curve"][-1]["step"] == cfg.steps


def test_the_record_shows_every_training_seed_doubling():
    record = json.loads((EXERCISE_DIR / "capstone_record.json").read_text())
    assert "--record" in record["command"]
    runs = record["runs"]
    assert len({r["seed"] for r in runs}) >= 2, "the record needs two training seeds or more"
    for r in runs:
        assert len(r["base_accuracy"]) >= 2 and len(r["final_accuracy"]) >= 2  # means over sampling seeds
        assert r["base_mean"] == pytest.approx(sum(r["base_accuracy"]) / len(r["base_accuracy"]))
        assert r["final_mean"] == pytest.approx(sum(r["final_accuracy"]) / len(r["final_accuracy"]))
        assert r["final_mean"] >= 2 * r["base_mean"], r["seed"]
