"""tinyzero.buckets: scoring a GRPO batch in length buckets gives TRL's log-probs, entropies
and gradients (to float rounding), in TRL's row order, on a tiny Qwen2 model."""

import contextlib
import functools
import types

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from trl.trainer.utils import add_fused_lm_head

from tinyzero import buckets
from tinyzero.trainer import trl_scorer


def _model_and_batch(rows=24, prompt=7, completion=30, seed=0):
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128)
    model = Qwen2ForCausalLM(config)
    add_fused_lm_head(model, temperature=0.6, outputs=("log_probs", "entropy"))
    ids = torch.randint(1, 50, (rows, prompt + completion))
    # TRL's layout: prompts left-padded, completions right-padded after eos; lengths vary a lot.
    prompt_lens = torch.randint(3, prompt + 1, (rows,))
    completion_lens = torch.randint(1, completion + 1, (rows,))
    completion_lens[0] = completion  # one row as long as the batch is wide
    cols = torch.arange(prompt + completion)
    prompt_mask = cols[None, :prompt] >= (prompt - prompt_lens)[:, None]
    completion_mask = cols[None, :completion] < completion_lens[:, None]
    mask = torch.cat([prompt_mask, completion_mask], dim=1).long()
    ids = ids.masked_fill(mask == 0, 0)
    return model, ids, mask, completion, completion_mask


def _trl_score():
    # TRL's method as it is (without its profiling wrapper), on a stand-in for the trainer: it
    # only uses accelerator.autocast.
    fake = types.SimpleNamespace(accelerator=types.SimpleNamespace(autocast=contextlib.nullcontext))
    return functools.partial(trl_scorer(), fake)


@pytest.mark.parametrize("n_buckets, batch_size", [(4, None), (3, 8), (2, None)])
def test_buckets_give_trls_logps_entropies_and_gradients(n_buckets, batch_size):
    model, ids, mask, keep, cmask = _model_and_batch()
    score = _trl_score()
    lp, ent, _ = score(model, ids, mask, keep, batch_size=batch_size, compute_entropy=True)
    (lp * cmask).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    blp, bent, aux = buckets.bucketed(score, n_buckets)(model, ids, mask, keep, batch_size=batch_size, compute_entropy=True)
    (blp * cmask).sum().backward()
    assert aux is None and blp.shape == lp.shape and bent.shape == ent.shape
    # Inside the completion mask: the same values (rounding only); outside: zeros where cut.
    torch.testing.assert_close(blp[cmask], lp[cmask], rtol=0, atol=1e-5)
    torch.testing.assert_close(bent[cmask], ent[cmask], rtol=0, atol=1e-5)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)
    # And it did cut: some rows' padding was not scored (their values there are exact zeros).
    assert (blp[~cmask] == 0).any()


def test_buckets_without_entropy_and_one_bucket_is_trls_own():
    model, ids, mask, keep, cmask = _model_and_batch(rows=10)
    score = _trl_score()
    lp, _, _ = score(model, ids, mask, keep)
    blp, bent, _ = buckets.bucketed(score, 2)(model, ids, mask, keep)
    assert bent is None
    torch.testing.assert_close(blp[cmask], lp[cmask], rtol=0, atol=1e-5)

    with pytest.raises(ValueError, match="update_buckets must be >= 1"):
        buckets.check_buckets(0)
