"""Trainer callbacks: what tinyzero measures while it trains, and where the numbers go.

The "aha moment" is two curves rising together: held-out accuracy and the length of the
thinking. This module measures both (and a few more, ``tinyzero.stats``), logs them into
``trainer.state.log_history`` (so every ``report_to`` backend sees them) and writes
``<output_dir>/metrics.jsonl``: one JSON object per logged step, with a ``step`` key.

metrics.jsonl columns (the same names appear in ``trainer.state.log_history``)
    step                          optimizer steps done; 0 is the model before any update
    eval/accuracy                 held-out problems solved (the task's ``grade``; no format credit)
    eval/thinking_length          mean characters of thinking, held-out completions
    eval/completion_length        mean characters per held-out completion
    eval/format_rate              fraction of well-formed held-out completions
    eval/truncation_rate          fraction cut off at max_completion_length
    eval/self_check_rate          fraction with a self-check phrase
    eval/attempts                 mean attempts ("=" lines, self-checks aside) in the thinking
    eval/search/*                 nano Countdown only (``tinyzero.nano.traces.search_summary``):
                                  hit_yes_rate (a true hit checked "yes"), continue_after_no
                                  (another attempt after a miss), arithmetic_ok, hits
    train/<same names>            the same statistics over the step's training completions (with
                                  steps_per_generation > 1, only on the steps that sample)
    reward, reward_std            TRL: mean (weighted) reward of the batch and its std
    rewards/<function>/mean       TRL: each reward function's mean (format_reward is
                                  logged with weight 0: a metric, not a reward)
    completions/mean_length       TRL: completion length in tokens (also min/max, clipped_ratio)
    loss, grad_norm, learning_rate, entropy, clip_ratio/*, step_time, epoch, num_tokens: TRL
    time/generation               seconds of the step spent sampling completions
                                  (``tinyzero.trainer``)
    time/eval                     seconds the held-out eval took (in the eval rows; not part of
                                  ``step_time``)
    time/rollout                  seconds spent making the batch: sampling, then rewards,
                                  advantages and (if needed) old log-probabilities. TRL's
                                  ``step_time`` minus this is the update (forward, backward,
                                  optimizer step)
Held-out rows appear at step 0, every ``eval_every`` steps and at the last step; the other
rows have only training columns. The held-out set is the first ``eval_size`` problems of the
test split, sampled at the training temperature with a fixed seed, so evaluations differ
only because the model did.

``<output_dir>/samples.jsonl`` keeps a few held-out completions per evaluation (the same
problems every time) so the growth of the reasoning can be read; ``python -m tinyzero.plot``
turns both files into PNGs and ``samples.md``.

The callbacks, all passed to ``GRPOTrainer(callbacks=[...])`` by ``tinyzero.train``:
``HeldOutEvalCallback`` (the eval/ rows), ``MetricsFileCallback`` (metrics.jsonl),
``CompactProgressCallback`` (one console line per log), ``NanoMarkerCallback`` (nano
checkpoints keep their tokenizer marker). ``train_metrics_reward`` is the weight-0 reward
function that logs ``train/*``; ``tinyzero.trainer`` adds the ``time/*`` columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from accelerate.utils import gather_object
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ProgressCallback

from tinyzero import stops
from tinyzero.generation import evaluate_model, sampling_config
from tinyzero.nano.tokenizer import save_tokenizer
from tinyzero.runfiles import (
    METRICS_FILE,
    SAMPLES_FILE,
    append_jsonl,
    is_step_row,
    read_jsonl,
    rewrite_jsonl,
)
from tinyzero.stats import analyze, is_truncated, rows_from_columns, summarize
from tinyzero.tasks.grading import completion_text

# --- training-batch statistics ----------------------------------------------------------


def train_metrics_reward(task, max_completion_length: int, eos_token_ids: Iterable[int]) -> Callable[..., list[float]]:
    """A reward function that rewards nothing and logs ``train/*`` statistics of each batch.

    GRPOTrainer calls every reward function with the batch's completions, their token ids
    and a ``log_metric`` hook, which is the one place the training completions are exposed.
    It must be given reward weight 0 (``tinyzero.train`` does); it then shows up as a
    constant ``rewards/train_metrics/mean`` of 0.
    """
    eos = tuple(eos_token_ids)

    def train_metrics(completions, completion_ids=None, log_metric=None, **kwargs) -> list[float]:
        n = len(completions)
        rows = rows_from_columns(kwargs, n)
        texts = [completion_text(c) for c in completions]
        ids = completion_ids if completion_ids is not None else [[]] * n
        stats = [analyze(t, is_truncated(i, max_completion_length, eos)) for t, i in zip(texts, ids)]
        correct = [task.grade(t, row).correct for t, row in zip(texts, rows)]
        if log_metric is not None:
            for key, value in summarize(stats, correct).items():
                log_metric(f"train/{key}", value)
        return [0.0] * n

    return train_metrics


# --- held-out evaluation ----------------------------------------------------------------


class HeldOutEvalCallback(TrainerCallback):
    """Samples and grades held-out problems at step 0, every ``eval_every`` steps and at the end.

    The results join the training row of the same step (one row per step in the logs) and
    a few completions go to ``samples.jsonl``. Generation is batched, left-padded, without
    gradients, at the trainer's own sampling settings, under a fixed seed that does not
    disturb the training random state.
    """

    def __init__(
        self,
        task,
        rows: list[dict],
        eval_every: int,
        batch_size: int = 64,
        num_samples: int = 4,
        seed: int = 0,
        search: bool = False,
    ):
        self.task = task
        self.rows = rows
        self.eval_every = eval_every
        self.batch_size = batch_size
        self.num_samples = num_samples
        self.seed = seed
        self.search = search
        self.trainer = None

    def bind(self, trainer) -> None:
        """The trainer whose model is sampled and whose log rows receive the figures (a
        ``tinyzero.trainer`` trainer binds its callbacks when it is built)."""
        self.trainer = trainer

    def evaluate(self, step: int) -> dict[str, float]:
        start = time.perf_counter()
        trainer, args = self.trainer, self.trainer.args
        # The trainer's own sampling settings; with vLLM it has none, so rebuild them from args.
        config = getattr(trainer, "generation_config", None) or sampling_config(
            trainer.model, trainer.processing_class, args.max_completion_length, args.temperature, args.top_p, args.top_k,
            stop_strings=stops.stop_strings(args.generation_kwargs),  # vLLM's stop, for the eval's generate
        )
        with trainer.accelerator.autocast():
            summary, records = evaluate_model(
                trainer.model,
                trainer.processing_class,
                self.task,
                self.rows,
                config,
                k=1,
                batch_size=self.batch_size,
                seed=self.seed,
                search=self.search,
                # under accelerate launch each process samples its share of the problems
                shard=(trainer.accelerator.process_index, trainer.accelerator.num_processes),
                gather=gather_object,
                sample=getattr(trainer, "sample", None),  # the trainer's sampler and threads (tinyzero.trainer)
            )
        if args.should_save and self.num_samples > 0:
            samples = [
                {
                    "step": step,
                    "index": r["problem"],
                    "prompt": self.rows[r["problem"]]["prompt"],
                    "completion": r["completion"],
                    "correct": r["correct"],
                    "reason": r["reason"],
                    "thinking_length": r["thinking_length"],
                }
                for r in records[: self.num_samples]
            ]
            append_jsonl(Path(args.output_dir) / SAMPLES_FILE, samples)
        metrics = {f"eval/{k}": v for k, v in summary.items() if k not in ("problems", "k")}
        return {**metrics, "time/eval": time.perf_counter() - start}

    def on_train_begin(self, args, state, control, **kwargs):
        # Step 0: the base model, before any update. A resumed run already has it.
        if self.eval_every > 0 and self.rows and state.global_step == 0:
            # transformers.Trainer.log, not GRPOTrainer.log: this row is only ours, and
            # GRPOTrainer.log would also flush (empty) training buffers into it.
            Trainer.log(self.trainer, self.evaluate(0))
        return control

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        due = self.eval_every > 0 and (step % self.eval_every == 0 or step >= state.max_steps)
        if due and self.rows:
            metrics = self.evaluate(step)
            # GRPOTrainer averages its metric buffer into the step's log row right after this
            # callback returns; adding one value per key there puts eval/* into the same row
            # as the step's training metrics (TRL's own log_metric hook would land a step late).
            for key, value in metrics.items():
                self.trainer.log_step_metric(key, value)
            control.should_log = True
        return control


# --- metrics.jsonl ----------------------------------------------------------------------


class MetricsFileCallback(TrainerCallback):
    """Appends every per-step log row to ``<output_dir>/metrics.jsonl`` as it is logged.

    On (re)start the file is rewritten from ``state.log_history``, which a resumed trainer
    has just loaded from the checkpoint: rows logged after that checkpoint by a killed run
    are dropped, and the resumed run logs them again, so every step appears exactly once.
    ``samples.jsonl`` is cut back to the checkpoint's step the same way.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            out = Path(args.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            rows = [r for r in state.log_history if is_step_row(r)]
            rewrite_jsonl(out / METRICS_FILE, rows)
            samples = [r for r in read_jsonl(out / SAMPLES_FILE) if r.get("step", 0) <= state.global_step]
            rewrite_jsonl(out / SAMPLES_FILE, samples)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and is_step_row(logs):
            append_jsonl(Path(args.output_dir) / METRICS_FILE, [{"step": state.global_step, **logs}])
        return control


# --- console ----------------------------------------------------------------------------

_SHOWN = (
    ("reward", "reward"),
    ("train/accuracy", "acc"),
    ("train/thinking_length", "think"),
    ("train/truncation_rate", "trunc"),
    ("eval/accuracy", "EVAL acc"),
    ("eval/thinking_length", "EVAL think"),
    ("eval/format_rate", "EVAL format"),
)


def format_log(step: int, logs: dict[str, Any]) -> str:
    """One short line for the console: the numbers a person watches."""
    parts = [f"step {step:>4}"]
    for key, label in _SHOWN:
        value = logs.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {value:.3g}" if "length" not in key else f"{label} {value:.0f}")
    return " | ".join(parts)


class CompactProgressCallback(ProgressCallback):
    """One progress bar, and a line per held-out eval.

    Trainer's tqdm bar (step, elapsed, time left) carries the latest training figures as its
    postfix: with ``steps_per_generation`` > 1 only the sampling steps have them, so the bar
    keeps the last ones instead of printing a line per step. Each held-out eval gets a line of
    its own above the bar (``format_eval``), step 0's included, which is logged before the bar
    exists. Other log rows (the end-of-training summary dict) print
    nothing: ``tinyzero.train`` prints its own summary.
    """

    def __init__(self):
        super().__init__()
        self.latest: dict[str, Any] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not (state.is_world_process_zero and logs and is_step_row(logs)):
            return
        figures = {k: v for k, v in logs.items() if k in _TRAIN_SHOWN and isinstance(v, (int, float))}
        if figures:
            self.latest.update(figures)
            if self.training_bar is not None:
                self.training_bar.set_postfix_str(_postfix(self.latest))
        if isinstance(logs.get("eval/accuracy"), (int, float)):
            line = format_eval(state.global_step, state.max_steps, logs)
            # above a live bar; step 0's eval comes before the bar exists
            (self.training_bar.write if self.training_bar is not None else print)(line)


_TRAIN_SHOWN = {key: label for key, label in _SHOWN if not key.startswith("eval/")}
_EVAL_SHOWN = (
    ("eval/accuracy", "accuracy", "{:.3f}"),
    ("eval/thinking_length", "thinking", "{:.0f} chars"),
    ("eval/format_rate", "well-formed", "{:.2f}"),
    ("eval/truncation_rate", "truncated", "{:.2f}"),
    ("time/eval", "took", "{:.0f} s"),
)


def format_eval(step: int, max_steps: int, logs: dict[str, Any]) -> str:
    """A held-out eval's console line: 'held-out eval, step 25/100: accuracy 0.150 | ...'."""
    parts = [f"{label} {fmt.format(logs[key])}" for key, label, fmt in _EVAL_SHOWN
             if isinstance(logs.get(key), (int, float))]
    return f"held-out eval, step {step}/{max_steps}: " + " | ".join(parts)


def _postfix(latest: dict[str, Any]) -> str:
    """The bar's postfix: the latest training-batch figures, as format_log writes them."""
    return " | ".join(
        f"{label} {latest[key]:.0f}" if "length" in key else f"{label} {latest[key]:.3g}"
        for key, label in _TRAIN_SHOWN.items()
        if key in latest
    )


class NanoMarkerCallback(TrainerCallback):
    """Saves every checkpoint's tokenizer the nano way (with the marker file).

    Trainer saves the tokenizer with plain ``save_pretrained``, which knows nothing of the
    marker; without it ``tinyzero.eval --model runs/nano/checkpoint-50`` would fall back to
    AutoTokenizer. Only added to the trainer for nano tokenizers.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            save_tokenizer(self.tokenizer, folder)
        return control
