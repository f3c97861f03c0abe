"""GRPO training with rule-based rewards: the R1-Zero recipe, at any scale.

    python -m tinyzero.train                                   # recipes/nano.yaml: CPU, offline
    python -m tinyzero.train --config recipes/qwen2.5-1.5b.yaml
    python -m tinyzero.train --max_steps 50 --output_dir runs/try   # any key, from the CLI
    python -m tinyzero.train --resume                          # continue the run in output_dir
    accelerate launch --config_file recipes/accelerate/zero2.yaml -m tinyzero.train --config ...

One YAML recipe sets everything: tinyzero's own keys (``TinyZeroArguments`` below), TRL's
``GRPOConfig`` and ``ModelConfig``. Command-line flags override the recipe; unknown keys are
errors. Top to bottom: parse -> data -> model and tokenizer -> rewards -> GRPOTrainer ->
train -> save. What is measured and where it is written: see ``tinyzero.metrics``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from trl import GRPOConfig, ModelConfig, ScriptArguments, TrlParser

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "nano.yaml"


@dataclass
class TinyZeroArguments(ScriptArguments):
    """tinyzero's keys. From ScriptArguments: ``dataset_name`` (a shipped dataset such as
    ``countdown_nano`` or a path, see ``tinyzero.data``), ``dataset_train_split`` and
    ``dataset_test_split`` (the split the held-out problems come from)."""

    task: str | None = field(default=None, metadata={"help": "Task in tinyzero.tasks.TASKS; default: the dataset's."})
    template: str = field(default="nano", metadata={"help": "Prompt template: nano, base or chat."})
    eval_every: int = field(default=25, metadata={"help": "Held-out eval every N steps (and at 0 and the end); 0 = never."})
    eval_size: int = field(default=200, metadata={"help": "Held-out problems per eval (first N of the test split)."})
    eval_batch_size: int = field(default=100, metadata={"help": "Sequences per generate() call in the held-out eval."})
    eval_samples: int = field(default=4, metadata={"help": "Held-out completions per eval kept in samples.jsonl."})
    eval_seed: int = field(default=1234, metadata={"help": "Sampling seed of the held-out eval (the same every eval)."})
    pretrain_config: str | None = field(default=None, metadata={"help": "Recipe of the nano base model (model 'nano')."})
    torch_threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads for torch (default: torch's choice). 1 is fastest for nano on a busy CPU."},
    )
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})
    plot: bool = field(default=True, metadata={"help": "Write the plots and samples.md when training ends."})

    def __post_init__(self):
        if self.dataset_name is None:
            self.dataset_name = "countdown_nano"
        if self.dataset_config is not None or self.dataset_streaming:
            raise ValueError("dataset_config and dataset_streaming are not used by tinyzero; remove them")


def parse_args(argv: list[str] | None = None) -> tuple[TinyZeroArguments, GRPOConfig, ModelConfig]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" not in argv:  # the default run is the nano one
        argv = ["--config", str(DEFAULT_RECIPE), *argv]
    parser = TrlParser((TinyZeroArguments, GRPOConfig, ModelConfig))
    return parser.parse_args_and_config(argv)


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest checkpoint-N folder whose trainer_state.json was fully written.

    Trainer writes that file after the weights, optimizer and RNG state, so a run killed in
    the middle of saving leaves a folder without it (or with a torn one): such folders are
    skipped here, where ``transformers.trainer_utils.get_last_checkpoint`` would pick them.
    """
    found = []
    for folder in Path(output_dir).glob("checkpoint-*"):
        suffix = folder.name.split("-")[-1]
        if folder.is_dir() and suffix.isdigit():
            found.append((int(suffix), folder))
    for _, folder in sorted(found, reverse=True):
        try:
            json.loads((folder / "trainer_state.json").read_text())
            return folder
        except (OSError, ValueError):
            continue
    return None


def find_checkpoint(script_args: TinyZeroArguments, training_args: GRPOConfig) -> str | None:
    """The checkpoint to resume from, or None for a fresh run (refusing to mix two runs)."""
    out = Path(training_args.output_dir)
    if training_args.resume_from_checkpoint:
        return training_args.resume_from_checkpoint
    last = last_complete_checkpoint(out)
    if script_args.resume:
        if last is None:
            print(f"[tinyzero] --resume: no complete checkpoint in {out} yet, starting from scratch")
        # A half-written checkpoint newer than `last` would be taken for the newest one later.
        for folder in out.glob("checkpoint-*"):
            if folder != last and folder.name.split("-")[-1].isdigit():
                if last is None or int(folder.name.split("-")[-1]) > int(last.name.split("-")[-1]):
                    print(f"[tinyzero] removing incomplete {folder}")
                    shutil.rmtree(folder, ignore_errors=True)
        return str(last) if last else None
    if any(out.glob("checkpoint-*")):
        raise SystemExit(
            f"{out} already holds a run with checkpoints. Pass --resume to continue it, or choose "
            "another --output_dir (or delete that one) to start over."
        )
    return None


def main(script_args: TinyZeroArguments, training_args: GRPOConfig, model_args: ModelConfig) -> dict:
    from transformers.trainer_callback import ProgressCallback  # noqa: PLC0415
    from trl import GRPOTrainer, get_peft_config  # noqa: PLC0415

    from tinyzero import metrics, nano  # noqa: PLC0415
    from tinyzero.data import load_task_data  # noqa: PLC0415
    from tinyzero.evaluate import eos_ids  # noqa: PLC0415
    from tinyzero.models import NanoMarkerCallback, is_nano_tokenizer, load_model_and_tokenizer  # noqa: PLC0415
    from tinyzero.rewards import format_reward  # noqa: PLC0415
    from tinyzero.tasks import TASKS  # noqa: PLC0415

    start = time.time()
    checkpoint = find_checkpoint(script_args, training_args)
    if script_args.torch_threads:
        import torch  # noqa: PLC0415

        torch.set_num_threads(script_args.torch_threads)

    # Data: training prompts, and a fixed held-out set from the test split.
    name, template = script_args.dataset_name, script_args.template
    train_dataset = load_task_data(name, split=script_args.dataset_train_split, template=template, task=script_args.task)
    eval_dataset = load_task_data(name, split=script_args.dataset_test_split, template=template, task=script_args.task)
    eval_dataset = eval_dataset.select(range(min(script_args.eval_size, len(eval_dataset))))
    task_name = train_dataset[0]["task"]
    if script_args.task not in (None, task_name):
        raise ValueError(f"--task {script_args.task} but dataset {name!r} holds {task_name} problems")
    task = TASKS[task_name]

    # Model and tokenizer ("nano" pretrains the base model once, then reuses it).
    model, tokenizer = load_model_and_tokenizer(
        model_args.model_name_or_path, model_args, script_args.pretrain_config, training_args.trust_remote_code
    )

    # Rewards: the task's (TinyZero's 1.0 / 0.1 / 0.0). format_reward and train_metrics are
    # weight-0 passengers: TRL hands them every batch, so they log the format rate and the
    # train/* statistics without changing the advantage.
    eos = sorted({tokenizer.eos_token_id, *eos_ids(model.generation_config)})
    reward_funcs = [
        task.reward,
        format_reward,
        metrics.make_train_metrics(task, training_args.max_completion_length, eos),
    ]
    if training_args.reward_weights is None:
        training_args.reward_weights = [1.0, 0.0, 0.0]

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,  # explicit: AutoTokenizer would pick the wrong one for nano
        peft_config=get_peft_config(model_args),
    )
    metrics.time_rollouts(trainer)
    nano_tokenizer = is_nano_tokenizer(tokenizer)
    # Order matters: on_train_begin runs in this order, and the step-0 eval logs from there.
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(metrics.CompactProgressCallback())
    trainer.add_callback(metrics.MetricsFileCallback())
    trainer.add_callback(
        metrics.HeldOutEvalCallback(
            trainer,
            task,
            eval_dataset,
            eval_every=script_args.eval_every,
            batch_size=script_args.eval_batch_size,
            num_samples=script_args.eval_samples,
            seed=script_args.eval_seed,
            search=nano_tokenizer and task_name == "countdown",
        )
    )
    if nano_tokenizer:
        trainer.add_callback(NanoMarkerCallback(tokenizer))

    trainer.train(resume_from_checkpoint=checkpoint)

    out = Path(training_args.output_dir)
    trainer.save_model(str(out))
    if nano_tokenizer and trainer.args.should_save:
        nano.save_tokenizer(tokenizer, out)  # with the marker that says "load me with tinyzero.nano"
    summary = summarize_run(trainer, time.time() - start)
    if trainer.args.should_save:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if script_args.plot:
            from tinyzero.plot import plot_run  # noqa: PLC0415 (matplotlib is slow to import)

            try:
                plot_run(out)
            except Exception as e:  # noqa: BLE001 (a plot must never cost a finished run)
                print(f"[tinyzero] plotting failed ({type(e).__name__}: {e}); the metrics are in {out}")
        print_summary(summary)
    return summary


def summarize_run(trainer, wall_seconds: float) -> dict:
    """Steps, time, and held-out accuracy / thinking length at the first and last evals."""
    history = trainer.state.log_history
    evals = [r for r in history if "eval/accuracy" in r]
    final = next((r for r in reversed(history) if "train_runtime" in r), {})
    out = Path(trainer.args.output_dir)
    summary = {
        "steps": trainer.state.global_step,
        "wall_seconds": round(wall_seconds, 1),
        "train_runtime": final.get("train_runtime"),
        "output_dir": str(out),
        "metrics": str(out / "metrics.jsonl"),
        "samples": str(out / "samples.jsonl"),
        "plots": str(out / "plots"),
    }
    for key in ("accuracy", "thinking_length"):
        if evals:
            summary[f"eval_{key}_first"] = evals[0].get(f"eval/{key}")
            summary[f"eval_{key}_last"] = evals[-1].get(f"eval/{key}")
    if evals:
        summary["eval_steps"] = [evals[0]["step"], evals[-1]["step"]]
    return summary


def print_summary(s: dict) -> None:
    lines = [f"[tinyzero] done: {s['steps']} steps in {s['wall_seconds']:.0f}s"]
    if "eval_steps" in s:
        first, last = s["eval_steps"]
        lines.append(
            f"  held-out accuracy   {s['eval_accuracy_first']:.3f} (step {first}) -> {s['eval_accuracy_last']:.3f} (step {last})"
        )
        lines.append(
            f"  thinking length     {s['eval_thinking_length_first']:.0f} -> {s['eval_thinking_length_last']:.0f} characters"
        )
    lines.append(f"  model and metrics   {s['output_dir']} (metrics.jsonl, samples.jsonl, summary.json)")
    lines.append(f"  plots               {s['plots']}  (again: python -m tinyzero.plot {s['output_dir']})")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*parse_args())
