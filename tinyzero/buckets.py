"""Score a GRPO batch in length buckets, so the update does not run over padding.

TRL pads every completion of a generation batch to the longest one, and scores the batch at
that width: the old log-probs once, then each update's forward and backward. When most
completions are much shorter than the longest, much of that work is padding. ``bucketed(score, buckets)`` wraps TRL's scoring method (``tinyzero.trainer``
applies it for ``update_buckets`` > 1): it sorts the rows by completion length, scores them in
``buckets`` chunks, each cut to its own longest completion, and returns the log-probs and
entropies in the original order at the original width (zeros past a chunk's width, where
the completion mask is 0).

Exact in arithmetic, not in bits: a completion's tokens see the same prompt, positions and
earlier tokens (the prompt's left padding is kept, and what is cut lies after every kept
token of that row), and the loss only reads positions inside the completion mask. Matmuls
over other shapes round differently in the last bits, so a run with buckets is another
draw of the same recipe, not the same bits (tests/test_buckets.py checks the agreement).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def check_buckets(buckets: int) -> None:
    """What a recipe's or a command's ``update_buckets`` may be."""
    if buckets < 1:
        raise ValueError(f"update_buckets must be >= 1, got {buckets}")


def bucketed(score, buckets: int):
    """``score`` (TRL's ``_get_per_token_logps_and_entropies``, bound) run per length bucket."""

    @functools.wraps(score)
    def wrapper(model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False,
                compute_aux_loss=False, **extra):
        rows = input_ids.size(0)
        # Images, token types or an MoE aux loss: TRL's own path (none of them in a tinyzero recipe).
        if compute_aux_loss or any(v is not None for v in extra.values()) or rows < 2 * buckets:
            return score(model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                         compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **extra)
        prompt_width = input_ids.size(1) - logits_to_keep
        # A row's width is up to its last unmasked completion token (TRL's masks are 1 up to
        # and including eos, then 0; the last 1, not the count, so that a mask with holes is kept whole).
        completion_mask = attention_mask[:, prompt_width:]
        positions = torch.arange(1, logits_to_keep + 1, device=completion_mask.device)
        lengths = (completion_mask * positions).amax(dim=1)
        order = torch.argsort(lengths, stable=True)
        # No chunk larger than TRL's own (batch_size bounds the memory of a forward).
        chunks = max(buckets, -(-rows // batch_size) if batch_size else 1)
        logps, entropies = [], []
        for chunk in order.chunk(chunks):
            width = max(int(lengths[chunk].max()), 1)
            lp, ent, _ = score(model, input_ids[chunk, : prompt_width + width], attention_mask[chunk, : prompt_width + width],
                               width, compute_entropy=compute_entropy)
            logps.append(F.pad(lp, (0, logits_to_keep - width)))
            if compute_entropy:
                entropies.append(F.pad(ent, (0, logits_to_keep - width)))
        back = torch.argsort(order)
        return torch.cat(logps)[back], (torch.cat(entropies)[back] if compute_entropy else None), None

    return wrapper
