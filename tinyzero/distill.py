"""Distil an RL-trained nano model into a smaller one, by sequences or by tokens.

    python -m tinyzero.distill --teacher_model runs/nano                  # recipes/nano-distill.yaml: sft
    python -m tinyzero.distill --teacher_model runs/nano --method token   # on-policy, token-level
    python -m tinyzero.distill --teacher_model runs/nano --num_samples 8 --output_dir runs/distill-8
    python -m tinyzero.eval --model runs/nano-distill                     # the student, like any model

Two methods, one recipe (``method``):

- ``sft``, sequence-level distillation as DeepSeek-R1 distilled its smaller models: the teacher
  samples ``num_samples`` completions of each *train* prompt (``tinyzero.generation.generate`` at
  the recipe's ``temperature``, with ``tinyzero.fastgen`` as in ``tinyzero.eval``), the task's
  grader (the function the RL reward and the eval use) keeps the correct ones (rejection
  sampling), and TRL's ``SFTTrainer`` fine-tunes the student on them, with the loss on the
  completion only (TRL's prompt-completion format). The kept completions are written to
  ``<output_dir>/distill_data.jsonl``. A correct completion cut off by the length limit is
  left out: SFT ends every completion with eos, so the student would learn to stop where the
  teacher did not.
- ``token``: TRL's ``DistillationTrainer``, used as TRL built it: on-policy, the student samples
  a completion of each prompt and is trained to match the teacher's next-token distribution on
  it under a generalized JSD (``beta``: 0 forward KL, 1 reverse KL, TRL's default). No grader
  is involved.

The student is a fresh nano base model pretrained like the teacher's but with about a quarter
of the parameters (``student_pretrain_config``: recipes/nano-small-pretrain.yaml, built once
by ``tinyzero.nano.build.ensure_base_model``); both share the nano tokenizer. The output is a
``save_pretrained`` folder with the nano tokenizer (``tinyzero.eval --model`` reads it),
``metrics.jsonl`` (the trainer's log rows) and ``summary.json`` (method, teacher, parameters,
samples kept, steps, seconds).

Configuration: tinyzero's keys (``DistillArguments``) and the method's TRL config: ``SFTConfig``
(plus the teacher's sampling keys, named as ``DistillationConfig`` names them) or
``DistillationConfig``. ``temperature``, ``top_p`` and ``max_completion_length`` therefore mean
the same in both: how completions are sampled (by the teacher for sft, by the student for
token; for token TRL also softens both distributions in the loss by ``temperature``). Flags
override the recipe; keys the method's config does not know are errors (``beta`` is token's).
Top to bottom: parse -> data -> teacher (sft: its graded samples, before the student exists,
so a teacher that gets nothing right costs no pretraining) -> student -> trainer -> train -> save.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from datasets import Dataset
from trl import (
    DistillationConfig,
    DistillationTrainer,
    ModelConfig,
    ScriptArguments,
    SFTConfig,
    SFTTrainer,
)

from tinyzero import callbacks, cli, fastgen, runfiles
from tinyzero.generation import generate, sampling_config
from tinyzero.models import (
    NANO,
    load_for_inference,
    load_model_and_tokenizer,
    resolve_model_path,
)
from tinyzero.nano.tokenizer import MARKER, is_nano_folder, save_tokenizer
from tinyzero.paths import RECIPES
from tinyzero.tasks import get_task
from tinyzero.tasks.data import load_task_data
from tinyzero.trainer import install_sampler

DEFAULT_RECIPE = RECIPES / "nano-distill.yaml"
PROG = "python -m tinyzero.distill"
METHODS = ("sft", "token")
DATA_FILE = "distill_data.jsonl"


@dataclass
class DistillArguments(ScriptArguments):
    """tinyzero's keys. From ScriptArguments: ``dataset_name`` and ``dataset_train_split`` (the
    prompts come from the train split only; the test split stays held out for the eval)."""

    method: str = field(default="sft", metadata={"help": "sft (teacher samples, keep the correct ones, SFT) or token (TRL's on-policy DistillationTrainer)."})
    teacher_model: str | None = field(default=None, metadata={"help": "The teacher: a trained model folder, e.g. the output_dir of tinyzero.train."})
    student_model: str = field(default="nano", metadata={"help": "The student: 'nano' (the base model of student_pretrain_config) or a model folder."})
    student_pretrain_config: str | None = field(default=None, metadata={"help": "Recipe of the student's nano base model (student_model 'nano')."})
    task: str | None = field(default=None, metadata={"help": "Task of a user's data file whose columns don't tell it; shipped data says its own."})
    template: str = field(default="nano", metadata={"help": "Prompt template: nano, base or chat."})
    num_prompts: int = field(default=0, metadata={"help": "Train prompts used (the first N of the split); 0: all."})
    num_samples: int = field(default=4, metadata={"help": "sft: teacher completions sampled per prompt before grading."})
    sample_batch_size: int = field(default=256, metadata={"help": "sft: sequences per generate() call of the teacher."})
    sample_seed: int = field(default=0, metadata={"help": "sft: seed of the teacher's sampling."})
    sampler: str = field(default="fastgen_exact", metadata={"help": "hf, fastgen or fastgen_exact (tinyzero.fastgen): the teacher's (sft) or the student's (token) sampler."})
    sampling_workers: int | None = field(
        default=None,
        metadata={"help": "fastgen samplers: threads a decode step's rows are split over (the same tokens for any number); default 2, 1 for hf."},
    )
    torch_threads: int | None = field(default=None, metadata={"help": "CPU threads for torch (default: torch's choice)."})

    def __post_init__(self):
        if self.dataset_name is None:
            self.dataset_name = "countdown_nano"
        if self.dataset_config is not None or self.dataset_streaming:
            raise ValueError("dataset_config and dataset_streaming are not used by tinyzero; remove them")
        if self.method not in METHODS:
            raise ValueError(f"--method {self.method!r}: choose from {list(METHODS)}")
        if self.num_prompts < 0:
            raise ValueError(f"--num_prompts must be at least 0 (0: all), got {self.num_prompts}")
        if self.num_samples < 1:
            raise ValueError(f"--num_samples must be at least 1, got {self.num_samples}")
        fastgen.check_sampler(self.sampler)
        self.sampling_workers = fastgen.workers_for(self.sampler, self.sampling_workers)


@dataclass
class SFTDistillConfig(SFTConfig):
    """TRL's SFTConfig plus how the teacher samples, under DistillationConfig's names and defaults."""

    temperature: float = field(default=1.0, metadata={"help": "Teacher sampling temperature (0: greedy)."})
    top_p: float = field(default=1.0, metadata={"help": "Teacher top-p."})
    max_completion_length: int = field(default=512, metadata={"help": "Teacher completion budget in tokens."})


def recipe_method(argv: list[str]) -> str:
    """The method a command line asks for: its (last) --method, else its recipe's, else sft."""
    method = None
    for i, arg in enumerate(argv):
        if arg == "--method" and i + 1 < len(argv):
            method = argv[i + 1]
        elif arg.startswith("--method="):
            method = arg.removeprefix("--method=")
    if method is not None:
        return method
    recipe = argv[argv.index("--config") + 1] if "--config" in argv[:-1] else DEFAULT_RECIPE
    try:
        config = yaml.safe_load(Path(recipe).read_text())
    except (OSError, yaml.YAMLError):
        return "sft"  # the parser reports the bad recipe itself
    return str(config.get("method", "sft")) if isinstance(config, dict) else "sft"


def parse_args(argv: list[str] | None = None) -> tuple[DistillArguments, SFTDistillConfig | DistillationConfig]:
    # The method picks the TRL config (both are TrainingArguments, so they can't be parsed
    # together); an unknown method parses with SFT's and then fails on --method, naming it.
    argv = list(sys.argv[1:] if argv is None else argv)
    config = DistillationConfig if recipe_method(argv) == "token" else SFTDistillConfig
    return cli.parse((DistillArguments, config), argv, default_config=DEFAULT_RECIPE, prog=PROG)


def keep_correct(task, rows: list[dict[str, Any]], groups: list[list]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rejection sampling: (kept rows, counts) from each row's sampled ``Generation``s.

    A completion is kept when ``task.grade`` says correct and it was not cut off by the length
    limit. Kept rows hold ``prompt`` and ``completion`` (messages for a chat prompt, TRL's
    conversational prompt-completion format) and the problem's own columns, for inspection.
    """
    kept: list[dict[str, Any]] = []
    counts = {"problems": len(rows), "sampled": 0, "correct": 0, "truncated_correct": 0, "kept": 0, "problems_kept": 0}
    for row, group in zip(rows, groups, strict=True):
        before, chat = len(kept), not isinstance(row["prompt"], str)
        for g in group:
            counts["sampled"] += 1
            if not task.grade(g.text, row).correct:
                continue
            counts["correct"] += 1
            if g.truncated:
                counts["truncated_correct"] += 1
                continue
            completion = [{"role": "assistant", "content": g.text}] if chat else g.text
            kept.append({"prompt": row["prompt"], "completion": completion, **{c: row[c] for c in task.columns}})
        counts["problems_kept"] += len(kept) > before
    counts["kept"] = len(kept)
    return kept, counts


def resolve_pair(args: DistillArguments) -> tuple[str, bool]:
    """(teacher path, whether the student is nano), checked before anything is loaded or
    pretrained: a missing teacher, or a non-nano teacher for a nano student, is an error."""
    if not args.teacher_model:
        raise ValueError("--teacher_model is required: a trained model folder, e.g. the output_dir of python -m tinyzero.train")
    try:
        teacher = resolve_model_path(args.teacher_model)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"teacher_model: {e}") from e
    student = Path(args.student_model).expanduser()
    student_nano = args.student_model == NANO or (student.is_dir() and is_nano_folder(student))
    if student_nano and not (Path(teacher).is_dir() and is_nano_folder(teacher)):
        raise ValueError(
            f"teacher_model {args.teacher_model!r} is not a nano model folder (no {MARKER}) but the student is nano: "
            "teacher and student must share the nano tokenizer"
        )
    return teacher, student_nano


def sample_teacher(teacher, tokenizer, task, rows, args: DistillArguments, training_args) -> tuple[list[dict], dict]:
    """The teacher's correct completions of ``rows`` (``keep_correct``) and the counts."""
    sample = fastgen.sampler(args.sampler, args.sampling_workers)  # falls back to model.generate wherever fastgen does not apply
    config = sampling_config(teacher, tokenizer, training_args.max_completion_length, training_args.temperature, training_args.top_p)
    prompts = [r["prompt"] for r in rows]
    groups = generate(teacher, tokenizer, prompts, config, args.num_samples, args.sample_batch_size, args.sample_seed, sample)
    return keep_correct(task, rows, groups)


def main(args: DistillArguments, training_args: SFTDistillConfig | DistillationConfig) -> dict:
    start = time.time()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    teacher_path, student_nano = resolve_pair(args)  # cheap checks first: the student may need pretraining

    # Data: train prompts only (the test split is the eval's). The task is the data's.
    data = load_task_data(args.dataset_name, split=args.dataset_train_split, template=args.template, task=args.task)
    rows = [dict(r) for r in data.select(range(min(args.num_prompts or len(data), len(data))))]
    task = get_task(rows[0]["task"])

    # Teacher: frozen, float32 like the run that trained it.
    teacher, teacher_tokenizer = load_for_inference(teacher_path, "float32", str(training_args.device))
    out = Path(training_args.output_dir)
    summary: dict[str, Any] = {
        "method": args.method,
        "teacher": args.teacher_model,
        "teacher_parameters": sum(p.numel() for p in teacher.parameters()),
        "prompts": len(rows),
    }
    if args.method == "sft":
        # Rejection sampling before the student exists (it may need pretraining): written out so
        # that a run can be inspected on what the student learns from; never train on nothing.
        kept, counts = sample_teacher(teacher, teacher_tokenizer, task, rows, args, training_args)
        summary.update(counts, temperature=training_args.temperature, data=str(out / DATA_FILE))
        out.mkdir(parents=True, exist_ok=True)
        runfiles.rewrite_jsonl(out / DATA_FILE, kept)
        print(f"[tinyzero] teacher: {counts['kept']} of {counts['sampled']} completions kept "
              f"({counts['problems_kept']} of {counts['problems']} problems) -> {out / DATA_FILE}")
        if not kept:
            raise ValueError(
                f"no correct completions kept: the teacher {args.teacher_model!r} got none of {counts['sampled']} right "
                f"({counts['truncated_correct']} correct ones were cut off at max_completion_length); nothing to train on"
            )
        del teacher  # SFT needs only its samples

    # Student: a fresh base model ("nano" pretrains student_pretrain_config once, then reuses it).
    student_path = resolve_model_path(args.student_model, args.student_pretrain_config)
    student, tokenizer = load_model_and_tokenizer(student_path, ModelConfig(dtype="float32"))
    summary.update(student=student_path, student_parameters=sum(p.numel() for p in student.parameters()))

    # Trainer: TRL's, as it is built; metrics.jsonl from its log rows, the nano marker in checkpoints.
    extra = [callbacks.NanoMarkerCallback(tokenizer)] if student_nano else []
    if args.method == "sft":
        trainer = SFTTrainer(
            model=student,
            args=training_args,
            train_dataset=Dataset.from_list(kept).select_columns(["prompt", "completion"]),
            processing_class=tokenizer,  # explicit: AutoTokenizer would pick the wrong one for nano
            callbacks=[callbacks.MetricsFileCallback(), *extra],
        )
    else:
        trainer = DistillationTrainer(
            model=student,
            teacher_model=teacher,
            args=training_args,
            train_dataset=Dataset.from_list(rows).select_columns(["prompt"]),
            processing_class=tokenizer,
            callbacks=[callbacks.MetricsFileCallback(), *extra],
        )
        install_sampler(trainer, args.sampler, args.sampling_workers)  # the student's on-policy samples come from model.generate

    result = trainer.train()

    # Save: the student (with the nano marker) and summary.json.
    trainer.save_model(str(out))
    summary.update(steps=trainer.state.global_step, train_loss=result.training_loss, seconds=round(time.time() - start, 1),
                   output_dir=str(out), metrics=str(out / runfiles.METRICS_FILE))
    if trainer.args.should_save:
        if student_nano:
            save_tokenizer(tokenizer, out)
        runfiles.write_summary(out, summary)
        print(f"[tinyzero] done: {summary['steps']} steps of {args.method} distillation in {summary['seconds']:.0f}s; "
              f"student ({summary['student_parameters']:,} parameters) in {out}; evaluate it with "
              f"python -m tinyzero.eval --model {out}")
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    cli.run(main, *parse_args())
