"""The one place tinyzero changes what TRL's trainers do.

``TinyZeroGRPOTrainer`` and ``TinyZeroRLOOTrainer`` are TRL's ``GRPOTrainer`` and
``RLOOTrainer`` with ``TinyZeroMixin`` in front. The mixin takes four keyword arguments of its
own, and everything else goes to TRL unchanged (callbacks included, through the constructor):

- ``sampler`` / ``sampling_workers``: sample the training completions with ``tinyzero.fastgen``
  instead of ``model.generate`` (``hf`` leaves TRL's sampling as it is). Only TRL's regular
  path is replaced (no vLLM, no continuous batching, text prompts); any model or sampling
  setting fastgen does not cover goes to ``model.generate`` as before. The same path hands
  ``model.generate`` the tokenizer when the sampling settings carry stop strings.
- ``sampling_threads``: torch's thread count while sampling (training completions and the
  held-out eval); the update keeps the process's own count. On a CPU the two want different
  counts: a decode step of a small model is too small to split, its update is not.
- ``update_buckets``: score each batch in N length buckets (``tinyzero.buckets``), for the
  old log-probabilities and the update; 1 is TRL's own scoring.
- the ``time/generation`` and ``time/rollout`` columns (``tinyzero.callbacks`` lists them),
  appended to the trainer's metric buffers, which TRL averages and logs with its own.

At construction it also binds the callbacks that need the trainer (``bind(trainer)``: the
held-out eval samples with its model and settings and logs into its rows) and removes
Trainer's stock progress bar (tinyzero's ``CompactProgressCallback`` replaces it).
``sample`` and ``log_step_metric`` are the two methods those callbacks call; ``rollout`` and
``logged`` open TRL's batch and metric buffers to code that compares against them.

``install_sampler`` is the same sampler for a TRL trainer tinyzero does not subclass
(``DistillationTrainer`` in ``tinyzero.distill``): it shadows ``generate`` on the model
instance, the one hook of that kind left.

TRL names this module relies on, checked against trl==1.16.0 (an upgrade re-reads these):

- overridden: ``GRPOTrainer._generate`` and ``RLOOTrainer._generate`` (timed),
  ``_generate_and_score_completions`` (timed), ``_generate_single_turn`` (fastgen, the
  thread count, the stop strings' tokenizer; its arguments ``images``, ``multimodal_fields``,
  ``has_tool_images``; GRPO's returns ``(completion_ids, logprobs)``, RLOO's ``completion_ids``),
  ``_get_per_token_logps_and_entropies`` (length buckets; its keyword arguments
  ``batch_size``, ``compute_entropy``, ``compute_aux_loss``; ``trl_scorer`` reads its
  ``__wrapped__``, left by TRL's profiling decorator);
- attributes read: ``_metrics`` (the per-mode metric buffers), ``_tokenizer``, ``_dist``
  (its ``summon_full_params``, a no-op but under FSDP v1),
  ``pad_to_multiple_of``, ``eos_token_ids``, ``generation_config``, ``generation_kwargs``,
  ``use_vllm``, ``use_transformers_continuous_batching``, ``model_wrapped``, ``accelerator``,
  ``args.ds3_gather_for_generation``, ``args.gradient_checkpointing_kwargs``;
- functions called: ``trl.models.unwrap_model_for_generation``, ``trl.trainer.utils.pad``,
  ``trl.extras.profiling.profiling_context``, ``transformers.Trainer._prepare_inputs``
  (moves the prompt tensors to the device, as TRL's regular path does).

``tests/test_seam.py`` fails when a private TRL name is used outside this module.
"""

from __future__ import annotations

import contextlib
import time
import types
import warnings

import torch
from transformers import Trainer
from transformers.trainer_callback import ProgressCallback
from trl import GRPOTrainer, RLOOTrainer
from trl.extras.profiling import profiling_context
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import pad

from tinyzero import buckets, fastgen

# TRL 1.16's unwrap_model_for_generation (called on every sampling turn) reads transformers 5.23's
# deprecated ``is_gradient_checkpointing``; the FutureWarning is about TRL's code, not a user's
# run. Drop this filter when the TRL pin moves to a release that reads is_activation_checkpointing.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

# Private TRL names used here; tests/test_seam.py refuses them anywhere else in the repo.
TRL_PRIVATE_NAMES = (
    "_generate",
    "_generate_and_score_completions",
    "_generate_single_turn",
    "_get_per_token_logps_and_entropies",
    "_metrics",
    "_tokenizer",
    "_dist",
    "_prepare_inputs",
)


class TinyZeroMixin:
    """What tinyzero adds to a TRL GRPO-family trainer (see the module docstring)."""

    _turn_returns_logprobs = True  # GRPO's _generate_single_turn returns (ids, logprobs)

    def __init__(self, *args, sampler: str = "hf", sampling_workers: int = 1, sampling_threads: int | None = None,
                 update_buckets: int = 1, **kwargs):
        fastgen.check_sampler(sampler)
        fastgen.check_workers(sampler, sampling_workers)
        buckets.check_buckets(update_buckets)
        self.sampler = sampler
        self.sampling_threads = sampling_threads
        self.update_buckets = update_buckets
        self._sample = fastgen.sampler(sampler, sampling_workers)  # None: model.generate
        super().__init__(*args, **kwargs)
        if self._sample is not None and (self.use_vllm or self.use_transformers_continuous_batching):
            raise ValueError(f"--sampler {sampler}: this trainer samples with vLLM / continuous batching, not model.generate (use --sampler hf)")
        for cb in self.callback_handler.callbacks:
            if callable(getattr(cb, "bind", None)):
                cb.bind(self)
        for cb in list(self.callback_handler.callbacks):
            if type(cb) is ProgressCallback:  # Trainer adds it after the callbacks it is given
                self.remove_callback(cb)

    # --- for tinyzero's callbacks ----------------------------------------------------------

    def sample(self, model, input_ids, attention_mask=None, generation_config=None, **kwargs):
        """``model.generate(input_ids=..., attention_mask=..., generation_config=...)`` with this
        trainer's sampler and sampling threads (the held-out eval calls it)."""
        with self.sampling_thread_count():
            if self._sample is None:
                return model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config, **kwargs)
            return self._sample(model, input_ids, attention_mask, generation_config, **kwargs)

    def log_step_metric(self, key: str, value: float) -> None:
        """Add ``value`` to this step's training log row (TRL averages its buffer into the row
        when the step logs: a value appended in ``on_step_end`` lands in that step's row)."""
        self._metrics["train"][key].append(value)

    @contextlib.contextmanager
    def sampling_thread_count(self):
        """torch at ``sampling_threads`` threads inside the block (unchanged if unset)."""
        if not self.sampling_threads:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self.sampling_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def rollout(self, rows: list[dict]) -> dict:
        """TRL's batch for ``rows`` (sampled, scored, advantages): ``_generate_and_score_completions``,
        for code that compares against TRL's own batch (notebooks/02)."""
        return self._generate_and_score_completions(rows)

    def logged(self, name: str, mode: str = "train") -> list[float]:
        """The values of metric ``name`` buffered since the last log row."""
        return self._metrics[mode][name]

    # --- TRL overrides ---------------------------------------------------------------------

    def _timed(self, name: str, start: float) -> None:
        mode = "train" if self.model.training else "eval"
        self._metrics[mode][name].append(time.perf_counter() - start)

    def _generate(self, prompts):
        start = time.perf_counter()
        out = super()._generate(prompts)
        self._timed("time/generation", start)
        return out

    def _generate_and_score_completions(self, *args, **kwargs):
        start = time.perf_counter()
        out = super()._generate_and_score_completions(*args, **kwargs)
        self._timed("time/rollout", start)
        return out

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        score = super()._get_per_token_logps_and_entropies
        if self.update_buckets == 1:
            return score(*args, **kwargs)
        return buckets.bucketed(score, self.update_buckets)(*args, **kwargs)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, *args, **kwargs):
        with self.sampling_thread_count():
            extra = self._generate_kwargs()
            if (self._sample is None and not extra) or images is not None or multimodal_fields or kwargs.get("has_tool_images"):
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, *args, **kwargs)
            completion_ids = self._regular_turn(prompt_ids, extra)
        return (completion_ids, None) if self._turn_returns_logprobs else completion_ids

    def _generate_kwargs(self) -> dict:
        """What TRL's ``model.generate`` call lacks: the tokenizer, without which ``generate``
        cannot read the sampling settings' stop strings."""
        config = self.generation_config
        return {"tokenizer": self.processing_class} if config is not None and config.stop_strings else {}

    def _regular_turn(self, prompt_ids, extra: dict) -> list[list[int]]:
        """TRL's regular sampling path (``_generate_single_turn`` without vLLM, text prompts),
        step for step, sampling through ``sample``: fastgen where it covers the model and the
        settings, ``model.generate`` (with ``extra``) everywhere else."""
        device = self.accelerator.device
        prompts = [torch.tensor(ids) for ids in prompt_ids]
        padded = pad(prompts, padding_value=self._tokenizer.pad_token_id, padding_side="left", pad_to_multiple_of=self.pad_to_multiple_of)
        mask = pad([torch.ones_like(t) for t in prompts], padding_value=0, padding_side="left", pad_to_multiple_of=self.pad_to_multiple_of)
        inputs = Trainer._prepare_inputs(self, {"input_ids": padded, "attention_mask": mask})
        with (
            profiling_context(self, "transformers.generate"),
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as model,
            torch.no_grad(),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
        ):
            seqs = self.sample(model, inputs["input_ids"], inputs["attention_mask"], self.generation_config, **extra)
        completion_ids = seqs[:, inputs["input_ids"].size(1) :]
        # TRL's own: everything after the first eos is masked off
        is_eos = torch.isin(completion_ids, torch.tensor(self.eos_token_ids, device=device))
        eos_idx = torch.full((is_eos.size(0),), is_eos.size(1), dtype=torch.long, device=device)
        eos_idx[is_eos.any(dim=1)] = is_eos.int().argmax(dim=1)[is_eos.any(dim=1)]
        sequence_indices = torch.arange(is_eos.size(1), device=device).expand(is_eos.size(0), -1)
        keep = (sequence_indices <= eos_idx.unsqueeze(1)).int()
        return [c[m].tolist() for c, m in zip(completion_ids.cpu(), keep.bool().cpu(), strict=True)]


class TinyZeroGRPOTrainer(TinyZeroMixin, GRPOTrainer):
    """TRL's GRPOTrainer with tinyzero's sampler, thread count, buckets and timing."""


class TinyZeroRLOOTrainer(TinyZeroMixin, RLOOTrainer):
    """TRL's RLOOTrainer with tinyzero's sampler, thread count, buckets and timing."""

    _turn_returns_logprobs = False  # RLOO's _generate_single_turn returns the ids only


TRAINERS = {"grpo": TinyZeroGRPOTrainer, "rloo": TinyZeroRLOOTrainer}


def trl_scorer():
    """TRL's GRPO scoring (``_get_per_token_logps_and_entropies``) as a function of
    ``(trainer, model, input_ids, ...)``, without its profiling wrapper: what the length
    buckets are checked against (it reads only ``trainer.accelerator.autocast``)."""
    return GRPOTrainer._get_per_token_logps_and_entropies.__wrapped__


# --- a trainer tinyzero does not subclass ----------------------------------------------------


def _fast_generate_method(self, input_ids=None, attention_mask=None, generation_config=None, **kwargs):
    """Installed as ``model.generate``: fastgen for plain calls, HF generate for anything else."""
    hf = self._fastgen_hf_generate
    if kwargs or input_ids is None:
        return hf(input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config, **kwargs)
    gc = generation_config if generation_config is not None else self.generation_config
    if fastgen.supported(self, gc, input_ids.device) is not None:
        return hf(input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config)
    self._fastgen_calls = getattr(self, "_fastgen_calls", 0) + 1
    return fastgen.generate(self, input_ids, attention_mask, gc, fallback=False, **self._fastgen_options)


def install_sampler(trainer_or_model, name: str, workers: int = 1):
    """Route ``model.generate`` of a trainer's model (or a model) through the sampler ``name``
    (``hf`` leaves it alone); returns the model. Shadows ``generate`` on the model instance (a
    bound method, so a deepcopy rebinds it): for TRL trainers that call ``model.generate`` and
    that tinyzero does not subclass. ``uninstall_sampler`` undoes it."""
    fastgen.check_sampler(name)
    fastgen.check_workers(name, workers)
    model = trainer_or_model if isinstance(trainer_or_model, torch.nn.Module) else trainer_or_model.model
    if name == "hf":
        return model
    if getattr(trainer_or_model, "use_vllm", False) or getattr(trainer_or_model, "use_transformers_continuous_batching", False):
        raise ValueError("install_sampler: this trainer samples with vLLM / continuous batching, not model.generate")
    if "_fastgen_hf_generate" not in model.__dict__:
        model._fastgen_hf_generate = model.generate  # the bound HF method
    model._fastgen_options = {**fastgen.SAMPLER_OPTIONS[name], "workers": workers}
    model.generate = types.MethodType(_fast_generate_method, model)
    return model


def uninstall_sampler(model) -> None:
    for key in ("generate", "_fastgen_hf_generate", "_fastgen_options"):
        model.__dict__.pop(key, None)
