"""Print a model's sampled completions for one problem, each with its grade.

    python -m tinyzero.sample --model runs/nano --nums 3 5 4 --target 23
    python -m tinyzero.sample --model runs/nano --index 7             # problem 7 of the test split
    python -m tinyzero.sample --model nano --dataset multiplication --index 0 --n 8 --temperature 0.7

Countdown problems can be given directly (``--nums``/``--target``); any task's problems can
be picked by index from a dataset split, graded by the data's own task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyzero import cli


@dataclass
class SampleArguments:
    model: str = field(default="nano", metadata={"help": "A model folder or run, 'nano', or a Hub id."})
    nums: list[int] | None = field(default=None, metadata={"help": "Countdown numbers, e.g. --nums 3 5 4."})
    target: int | None = field(default=None, metadata={"help": "Countdown target."})
    index: int = field(default=0, metadata={"help": "Problem index in the split (when --nums is not given)."})
    dataset: str = "countdown_nano"
    task: str | None = field(default=None, metadata={"help": "Only for a user file whose columns don't tell the task."})
    split: str = "test"
    template: str | None = field(default=None, metadata={"help": "Default: nano for nano models, else base."})
    n: int = field(default=4, metadata={"help": "Completions to sample."})
    temperature: float = 1.0
    max_completion_length: int = 256
    seed: int = 0
    dtype: str = "auto"
    device: str | None = None
    pretrain_config: str | None = None

    def __post_init__(self):
        if (self.nums is None) != (self.target is None):
            raise ValueError("--nums and --target go together (a Countdown problem); other tasks: use --index")


def main(args: SampleArguments) -> list[str]:
    from tinyzero.generation import generate, render_prompts, sampling_config  # noqa: PLC0415
    from tinyzero.models import load_for_inference  # noqa: PLC0415
    from tinyzero.nano.tokenizer import is_nano_tokenizer  # noqa: PLC0415
    from tinyzero.stats import analyze  # noqa: PLC0415
    from tinyzero.tasks import TASKS  # noqa: PLC0415
    from tinyzero.tasks.data import load_task_data  # noqa: PLC0415

    model, tokenizer = load_for_inference(args.model, args.dtype, args.device, args.pretrain_config)
    template = args.template or ("nano" if is_nano_tokenizer(tokenizer) else "base")
    if args.nums is not None:
        row = {"nums": list(args.nums), "target": args.target, "task": "countdown"}
        row["prompt"] = TASKS["countdown"].prompt(row, template)
    else:
        data = load_task_data(args.dataset, split=args.split, template=template, task=args.task)
        if not 0 <= args.index < len(data):
            raise ValueError(f"--index {args.index} is outside {args.dataset}/{args.split} (0..{len(data) - 1})")
        row = dict(data[args.index])
    task = TASKS[row["task"]]
    config = sampling_config(model, tokenizer, args.max_completion_length, args.temperature)
    (group,) = generate(model, tokenizer, [row["prompt"]], config, num_return_sequences=args.n, seed=args.seed)
    (prompt,), _ = render_prompts(tokenizer, [row["prompt"]])  # as the model sees it (chat template applied)
    print(f"=== prompt ({args.model}, template {template})\n{prompt}")
    for i, g in enumerate(group):
        verdict = task.grade(g.text, row)
        s = analyze(g.text, g.truncated)
        mark = "CORRECT" if verdict.correct else f"wrong: {verdict.reason}"
        print(f"\n=== sample {i + 1}/{args.n}  [{mark}; thinking {s['thinking_length']} chars, "
              f"{s['attempts']} attempts{', truncated' if g.truncated else ''}]")
        print(g.text)
    return [g.text for g in group]


def parse_args(argv: list[str] | None = None) -> SampleArguments:
    (args,) = cli.parse((SampleArguments,), argv, prog="python -m tinyzero.sample")
    return args


if __name__ == "__main__":
    cli.run(main, parse_args())
