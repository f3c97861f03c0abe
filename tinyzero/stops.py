"""Stop sampling at the end of the answer, ``</answer>``, and keep the tag in the completion.

With the base template a completion otherwise runs on past ``</answer>`` to the
end-of-sequence token or the length limit: on a GPU every token after the answer costs
generation time, and on a weak base model those are most of the tokens. Recipes turn it on
with ``stop_at_answer: true`` (the Qwen recipes do; nano's corpus ends its completions at the
tag already, so its recipes leave it off and sample exactly as before).

The grader reads the last complete ``<answer>`` block (``tinyzero.tasks.grading``); with the
stop there is only ever one, the first the model closes.

Each backend has its own way to say it, through TRL's ``generation_kwargs`` (checked against
TRL 1.16.0, transformers 5.23.0, vLLM 0.30.0's ``SamplingParams``):

- vLLM (``use_vllm``): TRL builds ``SamplingParams(**defaults, **generation_kwargs)`` in
  colocate mode and sends ``generation_kwargs`` to the server in server mode, so
  ``{"stop": [...], "include_stop_str_in_output": True}``. vLLM ends the completion at the
  token that completes the stop string.
- transformers' ``generate``: TRL builds ``GenerationConfig(**defaults, **generation_kwargs)``,
  so ``{"stop_strings": [...]}``; but ``generate`` needs ``tokenizer=`` to read stop strings
  and TRL 1.16 does not pass one, so tinyzero's trainer (``tinyzero.trainer``, the one seam
  to TRL) hands ``generate`` its tokenizer when the config carries stop strings. A row that stops before the
  batch's last is filled with the pad token; Qwen2.5's pad is its end-of-sequence token, so
  TRL's mask keeps one pad after the tag (a token the policy did not sample, scored in the
  loss like any other); the batch's last row to stop ends at the tag.

Either way a completion that ends at the tag without an end-of-sequence token is "clipped"
to TRL (``completions/clipped_ratio``; tinyzero's ``train/truncated`` counts only the length
limit), and ``mask_truncated_completions`` would drop it from the loss: refused with the stop.
- transformers' continuous batching (``use_transformers_continuous_batching``) has no stop
  strings in transformers 5.23: refused with the stop.

The held-out eval (``tinyzero.generation.generate``) reads ``stop_strings`` from its
``GenerationConfig`` and passes the tokenizer itself.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from tinyzero.tasks.grading import ANSWER_CLOSE

STOP = [ANSWER_CLOSE]
VLLM_HINT = 'pip install -e ".[vllm]" (Linux with a CUDA GPU; the pin and how it was chosen: pyproject.toml)'


def check_vllm(training_args) -> None:
    """A one-line error, before any model loads, when ``--use_vllm true`` cannot run."""
    if getattr(training_args, "use_vllm", False) and importlib.util.find_spec("vllm") is None:
        raise ValueError(f"--use_vllm true: vLLM is not installed; {VLLM_HINT}")


def generation_kwargs(stop: list[str], use_vllm: bool) -> dict[str, Any]:
    """The ``generation_kwargs`` that stop each backend at ``stop``, keeping it in the text."""
    if use_vllm:
        return {"stop": list(stop), "include_stop_str_in_output": True}
    return {"stop_strings": list(stop)}


def stop_strings(kwargs: dict[str, Any] | None) -> list[str] | None:
    """The stop strings of ``generation_kwargs`` in either backend's form, or None."""
    kwargs = kwargs or {}
    found = kwargs.get("stop_strings") or kwargs.get("stop")
    return [found] if isinstance(found, str) else list(found) if found else None


def configure(training_args, stop_at_answer: bool) -> None:
    """Merge the stop into ``training_args.generation_kwargs``, before the trainer is built.

    Refuses what would silently not stop or lose the stopped completions, one line each."""
    check_vllm(training_args)
    if not stop_at_answer:
        return
    use_vllm = bool(getattr(training_args, "use_vllm", False))
    if getattr(training_args, "use_transformers_continuous_batching", False):
        raise ValueError("stop_at_answer: transformers' continuous batching has no stop strings (add --stop_at_answer false)")
    if getattr(training_args, "mask_truncated_completions", False):
        raise ValueError("stop_at_answer: a stopped completion may have no end-of-sequence token, so "
                         "mask_truncated_completions would drop it (add --mask_truncated_completions false)")
    current = dict(training_args.generation_kwargs or {})
    wanted = generation_kwargs(STOP, use_vllm)
    clash = {k: current[k] for k in wanted if k in current and current[k] != wanted[k]}
    if clash:
        raise ValueError(f"generation_kwargs {clash} contradicts stop_at_answer (remove them, or add --stop_at_answer false)")
    training_args.generation_kwargs = {**current, **wanted}

