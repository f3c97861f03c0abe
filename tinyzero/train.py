"""GRPO training with rule-based rewards: the R1-Zero recipe, at any scale.

    python -m tinyzero.train                                   # recipes/nano.yaml: CPU, offline
    python -m tinyzero.train --config recipes/qwen2.5-1.5b.yaml
    python -m tinyzero.train --max_steps 50 --output_dir runs/try   # any key, from the CLI
    python -m tinyzero.train --resume                          # continue the run in output_dir
    python -m tinyzero.train --trainer rloo --output_dir runs/rloo  # TRL's RLOOTrainer, same recipe
    accelerate launch --config_file recipes/accelerate/zero2.yaml -m tinyzero.train --config ...

One YAML recipe sets everything: tinyzero's own keys (``TinyZeroArguments``), TRL's
``GRPOConfig`` and ``ModelConfig``. Command-line flags override the recipe; unknown keys are
errors. ``build_trainer`` reads the recipe into a trainer (data -> model -> rewards ->
callbacks -> ``tinyzero.trainer``'s GRPO or RLOO class, the one place TRL's behaviour is
changed); ``main`` builds, trains and saves. What is measured and where it is written:
``tinyzero.callbacks``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from transformers import TrainerCallback
from transformers.utils import logging as hf_logging
from trl import (
    GRPOConfig,
    GRPOTrainer,
    ModelConfig,
    RLOOConfig,
    RLOOTrainer,
    ScriptArguments,
    get_peft_config,
)
from trl.rewards import get_soft_overlong_punishment

from tinyzero import buckets, cli, fastgen, runfiles, stops
from tinyzero import callbacks as tz_callbacks
from tinyzero.checkpoints import find_checkpoint
from tinyzero.generation import eos_ids
from tinyzero.models import load_model_and_tokenizer, set_training_dtypes
from tinyzero.nano import traces
from tinyzero.nano.tokenizer import is_nano_tokenizer, save_tokenizer
from tinyzero.paths import RECIPES
from tinyzero.tasks import get_task
from tinyzero.tasks.data import load_task_data
from tinyzero.tasks.rewards import format_reward, select_reward
from tinyzero.trainer import TRAINERS

DEFAULT_RECIPE = RECIPES / "nano.yaml"


@dataclass
class TinyZeroArguments(ScriptArguments):
    """tinyzero's keys. From ScriptArguments: ``dataset_name`` (a shipped dataset such as
    ``countdown_nano`` or a path, see ``tinyzero.tasks.data``), ``dataset_train_split`` and
    ``dataset_test_split`` (the split the held-out problems come from)."""

    task: str | None = field(default=None, metadata={"help": "Task of a user's data file whose columns don't tell it; shipped data says its own."})
    template: str = field(default="nano", metadata={"help": "Prompt template: nano, base or chat."})
    trainer: str = field(default="grpo", metadata={"help": "grpo (TRL's GRPOTrainer) or rloo (TRL's RLOOTrainer: REINFORCE with a leave-one-out group baseline), on the same recipe."})
    reward: str = field(default="task", metadata={"help": "task (TinyZero's 1.0/0.1/0.0), or a control: format, random, flipped."})
    format_weight: float = field(default=0.0, metadata={"help": "Weight of format_reward beside the reward (logged either way)."})
    check_penalty: float = field(default=0.0, metadata={"help": "nano Countdown: the reward times 1 - P for a completion whose checks contradict the values it wrote (tinyzero.nano.traces.with_faithful_checks); 0: off."})
    check_slips: bool = field(default=False, metadata={"help": "With check_penalty: dock a slip in the arithmetic too (a written value that is not the chain's true value)."})
    overlong_cache: int = field(default=0, metadata={"help": "DAPO's soft overlong penalty over the last N tokens of the budget (0: off)."})
    eval_every: int = field(default=25, metadata={"help": "Held-out eval every N steps (and at 0 and the end); 0 = never."})
    eval_size: int = field(default=200, metadata={"help": "Held-out problems per eval (first N of the test split)."})
    eval_batch_size: int = field(default=100, metadata={"help": "Sequences per generate() call in the held-out eval."})
    eval_samples: int = field(default=4, metadata={"help": "Held-out completions per eval kept in samples.jsonl."})
    eval_seed: int = field(default=1234, metadata={"help": "Sampling seed of the held-out eval (the same every eval)."})
    pretrain_config: str | None = field(default=None, metadata={"help": "Recipe of the nano base model (model 'nano')."})
    torch_threads: int | None = field(default=None, metadata={"help": "CPU threads for torch (default: torch's choice)."})
    sampling_threads: int | None = field(
        default=None, metadata={"help": "CPU threads while sampling (model.generate), if not torch_threads."}
    )
    sampling_workers: int | None = field(
        default=None,
        metadata={"help": "fastgen samplers: threads a decode step's rows are split over (the same tokens for any "
                  "number; tinyzero.fastgen); default 2 for fastgen, 1 for hf, as eval and distill."},
    )
    update_buckets: int = field(
        default=1, metadata={"help": "Score each batch in N length buckets, each cut to its own longest completion (tinyzero.buckets); 1: TRL's way, at the batch's longest."}
    )
    sampler: str = field(default="hf", metadata={"help": "hf (model.generate), fastgen (tinyzero.fastgen, CPU), or fastgen_exact (HF's random stream)."})
    stop_at_answer: bool = field(default=False, metadata={"help": "End each completion at </answer>, kept, with generate and vLLM alike (tinyzero.stops)."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})
    plot: bool = field(default=True, metadata={"help": "Write the plots and samples.md when training ends."})

    def __post_init__(self):
        if self.dataset_name is None:
            self.dataset_name = "countdown_nano"
        if self.dataset_config is not None or self.dataset_streaming:
            raise ValueError("dataset_config and dataset_streaming are not used by tinyzero; remove them")
        fastgen.check_sampler(self.sampler)
        self.sampling_workers = fastgen.workers_for(self.sampler, self.sampling_workers)
        buckets.check_buckets(self.update_buckets)  # at parse time, not after the model has loaded
        traces.check_penalty(self.check_penalty)  # at parse time, as update_buckets
        if self.check_penalty and self.reward != "task":
            raise ValueError(f"--check_penalty docks the task's reward; reward is {self.reward!r} (add --check_penalty 0)")
        if self.trainer not in TRAINERS:
            raise ValueError(f"--trainer {self.trainer!r}: choose from {list(TRAINERS)}")


def rloo_config(grpo: GRPOConfig) -> RLOOConfig:
    """The recipe's GRPOConfig as TRL's RLOOConfig: every key the two share, so one recipe runs
    either trainer (the recipe's beta too: RLOOConfig's own default is 0.05, not 0). GRPO's own
    keys (loss_type, scale_rewards, ...) have no RLOO counterpart: RLOO's advantage is the reward
    minus the mean of the group's other rewards, unscaled (normalize_advantages false, as
    scale_rewards none), and its loss and clipping are per sequence. Those set away from TRL's
    defaults are named, not silently dropped."""
    rloo = {f.name for f in fields(RLOOConfig) if f.init}
    kwargs = {f.name: getattr(grpo, f.name) for f in fields(GRPOConfig) if f.init and f.name in rloo}
    kwargs["generation_batch_size"] = None  # GRPOConfig derived it from steps_per_generation; RLOOConfig does again
    unused = [f"{f.name}={getattr(grpo, f.name)}" for f in fields(GRPOConfig)
              if f.init and f.name not in rloo and getattr(grpo, f.name) != f.default]
    if unused:
        print(f"[tinyzero] rloo: GRPO-only keys not used: {', '.join(unused)}")
    return RLOOConfig(**kwargs)


def parse_args(argv: list[str] | None = None) -> tuple[TinyZeroArguments, GRPOConfig, ModelConfig]:
    return cli.parse((TinyZeroArguments, GRPOConfig, ModelConfig), argv, default_config=DEFAULT_RECIPE, prog="python -m tinyzero.train")


def build_trainer(script_args: TinyZeroArguments, training_args: GRPOConfig, model_args: ModelConfig, *,
                  callbacks: Sequence[TrainerCallback] = (), train_dataset=None) -> GRPOTrainer | RLOOTrainer:
    """The trainer ``python -m tinyzero.train`` trains, built from its three argument groups:
    data, model and tokenizer (``trainer.processing_class``), rewards, tinyzero's callbacks and
    then ``callbacks``, in a ``tinyzero.trainer`` class (the one place TRL's behaviour is
    changed). ``train_dataset`` replaces the recipe's training split if given. Tests, notebooks
    and benchmarks build their trainers here, so they train what the command trains."""
    if script_args.torch_threads:
        import torch  # noqa: PLC0415

        torch.set_num_threads(script_args.torch_threads)
    if training_args.reward_weights is not None:
        raise ValueError("reward_weights is set by tinyzero from reward, format_weight and overlong_cache; use those")
    if script_args.trainer == "rloo":
        training_args = rloo_config(training_args)
    stops.configure(training_args, script_args.stop_at_answer)  # before anything loads

    # Data: training prompts, and a fixed held-out set from the test split. The task is the data's.
    name, template = script_args.dataset_name, script_args.template
    if train_dataset is None:
        train_dataset = load_task_data(name, split=script_args.dataset_train_split, template=template, task=script_args.task)
    eval_dataset = load_task_data(name, split=script_args.dataset_test_split, template=template, task=script_args.task)
    eval_rows = [dict(r) for r in eval_dataset.select(range(min(script_args.eval_size, len(eval_dataset))))]
    task = get_task(train_dataset[0]["task"])

    # Model and tokenizer ("nano" pretrains the base model once, then reuses it). A full
    # fine-tune trains float32 master weights whatever dtype the recipe loads (bf16 is autocast).
    set_training_dtypes(model_args, training_args)
    model, tokenizer = load_model_and_tokenizer(
        model_args.model_name_or_path, model_args, script_args.pretrain_config, training_args.trust_remote_code
    )
    nano = is_nano_tokenizer(tokenizer)

    # Rewards: the task's (TinyZero's 1.0 / 0.1 / 0.0) or a control, format_reward at
    # format_weight, and train_metrics at weight 0: TRL hands it every batch, so it logs train/*.
    eos = sorted({tokenizer.eos_token_id, *eos_ids(model.generation_config)})
    reward = select_reward(script_args.reward, task.reward)
    if script_args.check_penalty:
        if not (nano and task.name == "countdown"):
            raise ValueError(f"check_penalty reads nano Countdown traces; this run is {task.name} on {model_args.model_name_or_path} (add --check_penalty 0)")
        reward = traces.with_faithful_checks(reward, script_args.check_penalty, script_args.check_slips)
    reward_funcs = [
        reward,
        format_reward,
        tz_callbacks.train_metrics_reward(task, training_args.max_completion_length, eos),
    ]
    training_args.reward_weights = [1.0, script_args.format_weight, 0.0]
    if script_args.overlong_cache > 0:  # 0 up to max - cache tokens, then down to -1 at the limit
        reward_funcs.append(get_soft_overlong_punishment(training_args.max_completion_length, script_args.overlong_cache))
        training_args.reward_weights.append(1.0)

    # Callbacks. Order matters at on_train_begin: metrics.jsonl is rewritten from the
    # checkpoint's history before the step-0 eval logs its row.
    heldout = tz_callbacks.HeldOutEvalCallback(
        task,
        eval_rows,
        eval_every=script_args.eval_every,
        batch_size=script_args.eval_batch_size,
        num_samples=script_args.eval_samples,
        seed=script_args.eval_seed,
        search=nano and task.name == "countdown",
    )
    own = [tz_callbacks.MetricsFileCallback(), heldout, tz_callbacks.CompactProgressCallback()]
    if nano:
        own.append(tz_callbacks.NanoMarkerCallback(tokenizer))
    return TRAINERS[script_args.trainer](
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,  # explicit: AutoTokenizer would pick the wrong one for nano
        peft_config=get_peft_config(model_args),
        callbacks=[*own, *callbacks],
        sampler=script_args.sampler,  # TRL's sampling and the held-out eval
        sampling_workers=script_args.sampling_workers,
        sampling_threads=script_args.sampling_threads,
        update_buckets=script_args.update_buckets,  # the old log-probs and the update
    )


def main(script_args: TinyZeroArguments, training_args: GRPOConfig, model_args: ModelConfig) -> dict:
    start = time.time()
    # One progress bar: transformers' own bars (loading the weights, writing each checkpoint's
    # shards) would break tinyzero's step bar into pieces (tinyzero.callbacks.CompactProgressCallback).
    hf_logging.disable_progress_bar()
    checkpoint = find_checkpoint(training_args.output_dir, script_args.resume, training_args.resume_from_checkpoint)
    trainer = build_trainer(script_args, training_args, model_args)

    trainer.train(resume_from_checkpoint=checkpoint)

    # Save: the model (with the nano marker), summary.json, plots and samples.md.
    out = Path(trainer.args.output_dir)
    trainer.save_model(str(out))
    summary = runfiles.summarize_run(trainer.state.log_history, trainer.state.global_step, out, time.time() - start)
    if trainer.args.should_save:
        if is_nano_tokenizer(trainer.processing_class):
            save_tokenizer(trainer.processing_class, out)
        runfiles.write_summary(out, summary)
        if script_args.plot:
            from tinyzero.plot import plot_run  # noqa: PLC0415 (matplotlib is slow to import)

            try:
                plot_run(out)
            except Exception as e:  # noqa: BLE001 (a plot must never cost a finished run)
                print(f"[tinyzero] plotting failed ({type(e).__name__}: {e}); the metrics are in {out}")
        print(runfiles.format_summary(summary))
    return summary


if __name__ == "__main__":
    cli.run(main, *parse_args())
