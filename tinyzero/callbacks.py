"""What tinyzero measures while it trains, and where the numbers go.

The "aha moment" is two curves rising together: held-out accuracy and the length of the
thinking. This module computes both (and a few more) for every completion, logs them into
``trainer.state.log_history`` (so every ``report_to`` backend sees them) and writes
``<output_dir>/metrics.jsonl``: one JSON object per logged step, with a ``step`` key.

Per-completion analysis (pure functions of the text, easy to test)
    thinking_length    characters of reasoning inside ``<think>`` (``grader.thinking_text``)
    completion_length  characters of the whole completion
    attempts           lines of the thinking that contain "=" and no self-check phrase
                       (one tried calculation each)
    self_check         says "wait", "let me check", "let me verify", "double-check" or
                       "recheck" (case-insensitive, whole words)
    well_formed        ``<think>...</think><answer>...</answer>`` (``grader.is_well_formed``)
    truncated          hit max_completion_length without an end-of-sequence token

metrics.jsonl columns (the same names appear in ``trainer.state.log_history``)
    step                          optimizer steps done; 0 is the model before any update
    eval/accuracy                 held-out problems solved (the task's ``grade``; no format credit)
    eval/thinking_length          mean characters of thinking, held-out completions
    eval/completion_length        mean characters per held-out completion
    eval/format_rate              fraction of well-formed held-out completions
    eval/truncation_rate          fraction cut off at max_completion_length
    eval/self_check_rate          fraction with a self-check phrase
    eval/attempts                 mean attempts ("=" lines, self-checks aside) in the thinking
    eval/search/*                 nano Countdown only (``tinyzero.corpus.search_summary``):
                                  hit_yes_rate (a true hit checked "yes"), continue_after_no
                                  (another attempt after a miss), arithmetic_ok, hits
    train/<same names>            the same statistics over the step's training completions (with
                                  steps_per_generation > 1, only on the steps that sample)
    reward, reward_std            TRL: mean (weighted) reward of the batch and its std
    rewards/<function>/mean       TRL: each reward function's mean (format_reward is
                                  logged with weight 0: a metric, not a reward)
    completions/mean_length       TRL: completion length in tokens (also min/max, clipped_ratio)
    loss, grad_norm, learning_rate, entropy, clip_ratio/*, step_time, epoch, num_tokens: TRL
    time/generation               seconds of the step spent sampling completions (TRL's
                                  ``_generate``; ``time_rollouts``)
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
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from tinyzero.grader import completion_text, is_well_formed, thinking_text

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
# The statistics logged under eval/ and train/, in display order.
SUMMARY_KEYS = (
    "accuracy",
    "thinking_length",
    "completion_length",
    "format_rate",
    "truncation_rate",
    "self_check_rate",
    "attempts",
)

_SELF_CHECK = re.compile(r"\b(?:wait|let\s+me\s+check|let\s+me\s+verify|double-check|recheck)\b", re.IGNORECASE)


def time_rollouts(trainer) -> None:
    """Log where a GRPO step's time goes: ``time/generation`` and ``time/rollout`` (see above).

    TRL's ``step_time`` covers the whole step. This wraps the two GRPOTrainer methods that
    make the batch (private API of the pinned TRL; tests/test_train.py checks the columns
    appear) and appends their durations to the trainer's own metric buffers, which TRL
    averages and logs with everything else.
    """

    def timed(method, name):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = method(*args, **kwargs)
            mode = "train" if trainer.model.training else "eval"
            trainer._metrics[mode][name].append(time.perf_counter() - start)
            return out

        return wrapper

    trainer._generate = timed(trainer._generate, "time/generation")
    trainer._generate_and_score_completions = timed(trainer._generate_and_score_completions, "time/rollout")


# --- per-completion analysis ------------------------------------------------------------


def thinking_length(text: str) -> int:
    """Characters of reasoning inside the think section."""
    return len(thinking_text(text))


def attempts(text: str) -> int:
    """Lines of the thinking that contain "=", self-checks not counted: one tried calculation each.

    The one definition of "attempts" in tinyzero (training metrics, eval and the base-model
    report alike). It needs no knowledge of the trace format, so it works for any model.
    """
    return sum("=" in line and not _SELF_CHECK.search(line) for line in thinking_text(text).splitlines())


def has_self_check(text: str) -> bool:
    """Whether the completion re-examines itself ("wait", "let me check", ...)."""
    return bool(_SELF_CHECK.search(text))


def is_truncated(completion_ids: Sequence[int], max_completion_length: int, eos_token_ids: Iterable[int]) -> bool:
    """Cut off by the length limit: as long as allowed and with no end-of-sequence token."""
    eos = set(eos_token_ids)
    return len(completion_ids) >= max_completion_length and not any(t in eos for t in completion_ids)


def analyze(completion: Any, truncated: bool = False) -> dict[str, Any]:
    """All per-completion statistics of one completion (a string or TRL message list)."""
    text = completion_text(completion)
    return {
        "thinking_length": thinking_length(text),
        "completion_length": len(text),
        "attempts": attempts(text),
        "self_check": has_self_check(text),
        "well_formed": is_well_formed(text),
        "truncated": bool(truncated),
    }


def summarize(stats: Sequence[dict[str, Any]], correct: Sequence[bool]) -> dict[str, float]:
    """Means over a batch of ``analyze`` results and grades, keyed by ``SUMMARY_KEYS``."""
    n = len(stats)
    if n == 0 or len(correct) != n:
        raise ValueError(f"need one grade per completion, got {len(correct)} for {n}")

    def mean(key: str) -> float:
        return sum(float(s[key]) for s in stats) / n

    return {
        "accuracy": sum(map(bool, correct)) / n,
        "thinking_length": mean("thinking_length"),
        "completion_length": mean("completion_length"),
        "format_rate": mean("well_formed"),
        "truncation_rate": mean("truncated"),
        "self_check_rate": mean("self_check"),
        "attempts": mean("attempts"),
    }


def rows_from_columns(columns: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Per-completion rows from the column lists TRL passes to reward functions as kwargs."""
    cols = {k: v for k, v in columns.items() if isinstance(v, (list, tuple)) and len(v) == n}
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


# --- training-batch statistics ----------------------------------------------------------


def make_train_metrics(task, max_completion_length: int, eos_token_ids: Iterable[int]) -> Callable[..., list[float]]:
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
        trainer,
        task,
        dataset,
        eval_every: int,
        batch_size: int = 64,
        num_samples: int = 4,
        seed: int = 0,
        search: bool = False,
    ):
        self.search = search
        self.trainer = trainer
        self.task = task
        self.rows = [dict(r) for r in dataset]
        self.eval_every = eval_every
        self.batch_size = batch_size
        self.num_samples = num_samples
        self.seed = seed

    def evaluate(self, step: int) -> dict[str, float]:
        from tinyzero.evaluate import generate, sampling_config  # noqa: PLC0415 (evaluate imports this module)

        trainer, args = self.trainer, self.trainer.args
        # The trainer's own sampling settings; with vLLM it has none, so rebuild them from args.
        config = getattr(trainer, "generation_config", None) or sampling_config(
            trainer.model, trainer.processing_class, args.max_completion_length, args.temperature, args.top_p, args.top_k
        )
        with trainer.accelerator.autocast():
            generations = generate(
                trainer.model,
                trainer.processing_class,
                [r["prompt"] for r in self.rows],
                config,
                batch_size=self.batch_size,
                seed=self.seed,
            )
        texts = [g[0].text for g in generations]
        stats = [analyze(g[0].text, g[0].truncated) for g in generations]
        verdicts = [self.task.grade(t, row) for t, row in zip(texts, self.rows)]
        if trainer.args.should_save and self.num_samples > 0:
            samples = [
                {
                    "step": step,
                    "index": i,
                    "prompt": self.rows[i]["prompt"],
                    "completion": texts[i],
                    "correct": verdicts[i].correct,
                    "reason": verdicts[i].reason,
                    "thinking_length": stats[i]["thinking_length"],
                }
                for i in range(min(self.num_samples, len(texts)))
            ]
            append_jsonl(Path(trainer.args.output_dir) / SAMPLES_FILE, samples)
        summary = summarize(stats, [v.correct for v in verdicts])
        if self.search:  # nano Countdown traces can be read back (tinyzero.corpus.search_summary)
            from tinyzero.corpus import search_summary  # noqa: PLC0415

            summary.update(search_summary([thinking_text(t) for t in texts], [r["target"] for r in self.rows]))
        return {f"eval/{k}": v for k, v in summary.items()}

    def on_train_begin(self, args, state, control, **kwargs):
        # Step 0: the base model, before any update. A resumed run already has it.
        if self.eval_every > 0 and self.rows and state.global_step == 0:
            # transformers.Trainer.log, not GRPOTrainer.log: this row is only ours, and
            # GRPOTrainer.log would also flush (empty) training buffers into it.
            from transformers import Trainer  # noqa: PLC0415

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
                self.trainer._metrics["train"][key].append(value)
            control.should_log = True
        return control


# --- metrics.jsonl ----------------------------------------------------------------------


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf: write them as null, as TRL does for reward functions returning None.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_step_row(log: dict[str, Any]) -> bool:
    """A per-step log row (not the end-of-training summary that Trainer logs as well)."""
    return "train_runtime" not in log


def append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")
        f.flush()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (the process was killed mid-write) is skipped."""
    rows = []
    path = Path(path)
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


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
            _rewrite(out / METRICS_FILE, rows)
            samples = [r for r in read_jsonl(out / SAMPLES_FILE) if r.get("step", 0) <= state.global_step]
            _rewrite(out / SAMPLES_FILE, samples)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and is_step_row(logs):
            append_jsonl(Path(args.output_dir) / METRICS_FILE, [{"step": state.global_step, **logs}])
        return control


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.touch()
    append_jsonl(tmp, rows)
    tmp.replace(path)


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
    """Trainer's tqdm bar, but each log prints one short line instead of a dict of 30 keys."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs and is_step_row(logs):
            self.training_bar.write(format_log(state.global_step, logs))
