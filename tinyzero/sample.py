"""Print a model's sampled completions for one problem, each with its grade.

    python -m tinyzero.sample --model runs/nano --nums 3 5 4 --target 23
    python -m tinyzero.sample --model runs/nano --index 7             # problem 7 of the test split
    python -m tinyzero.sample --model nano --index 0 --n 8 --temperature 0.7

Countdown problems can be given directly (``--nums``/``--target``); any task's problems can
be picked by index from a dataset split (``--task``, ``--dataset``, ``--split``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass
class SampleArguments:
    model: str = field(default="nano", metadata={"help": "A model folder or run, 'nano', or a Hub id."})
    nums: list[int] | None = field(default=None, metadata={"help": "Countdown numbers, e.g. --nums 3 5 4."})
    target: int | None = field(default=None, metadata={"help": "Countdown target."})
    index: int = field(default=0, metadata={"help": "Problem index in the split (when --nums is not given)."})
    task: str = "countdown"
    dataset: str = "countdown_nano"
    split: str = "test"
    template: str | None = field(default=None, metadata={"help": "Default: nano for nano models, else base."})
    n: int = field(default=4, metadata={"help": "Completions to sample."})
    temperature: float = 1.0
    max_completion_length: int = 256
    seed: int = 0
    dtype: str = "auto"
    device: str | None = None
    pretrain_config: str | None = None


def main(args: SampleArguments) -> list[str]:
    from tinyzero.eval import load_for_eval  # noqa: PLC0415
    from tinyzero.evaluate import generate, sampling_config  # noqa: PLC0415
    from tinyzero.metrics import analyze  # noqa: PLC0415
    from tinyzero.tasks import TASKS  # noqa: PLC0415

    task = TASKS[args.task]
    model, tokenizer, nano = load_for_eval(args.model, args.dtype, args.device, args.pretrain_config)
    template = args.template or ("nano" if nano else "base")
    if args.nums is not None:
        if args.task != "countdown" or args.target is None:
            raise SystemExit("--nums needs --target (and the countdown task); other tasks: use --index")
        row = {"nums": list(args.nums), "target": args.target}
        row["prompt"] = task.prompt(row, template)
    else:
        from tinyzero.data import load_task_data  # noqa: PLC0415

        row = dict(load_task_data(args.dataset, split=args.split, template=template)[args.index])
    config = sampling_config(model, tokenizer, args.max_completion_length, args.temperature)
    (group,) = generate(model, tokenizer, [row["prompt"]], config, num_return_sequences=args.n, seed=args.seed)
    prompt = row["prompt"] if isinstance(row["prompt"], str) else str(row["prompt"])
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
    from trl import TrlParser  # noqa: PLC0415

    (args,) = TrlParser((SampleArguments,)).parse_args_and_config(list(sys.argv[1:] if argv is None else argv))
    return args


if __name__ == "__main__":
    main(parse_args())
