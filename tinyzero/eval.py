"""Evaluate a model on held-out problems: pass@1, pass@k, lengths and format.

    python -m tinyzero.eval --model runs/nano                       # a trained run
    python -m tinyzero.eval --model nano --n 100 --k 4              # the nano base model
    python -m tinyzero.eval --model runs/nano/checkpoint-50 --output eval.json
    python -m tinyzero.eval --model Qwen/Qwen2.5-1.5B --dataset countdown --template base

Samples ``k`` completions for each of the first ``n`` problems of a split, grades them with
the task's ``grade`` (the same definition of correct as training) and prints a table and a
JSON object. pass@k uses the unbiased estimator (``tinyzero.evaluate.pass_at_k``); pass@1 is
the mean fraction of correct samples. Lengths are in characters; see ``tinyzero.metrics``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class EvalArguments:
    model: str = field(default="nano", metadata={"help": "A model folder or run, 'nano', or a Hub id."})
    task: str = field(default="countdown", metadata={"help": "Task in tinyzero.tasks.TASKS."})
    dataset: str = field(default="countdown_nano", metadata={"help": "Shipped dataset name or a .jsonl/.parquet path."})
    split: str = "test"
    template: str | None = field(default=None, metadata={"help": "nano, base or chat; default: nano for nano models, else base."})
    n: int = field(default=500, metadata={"help": "Problems (the first n of the split)."})
    k: int = field(default=8, metadata={"help": "Samples per problem."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (0: greedy, then use k=1)."})
    top_p: float = 1.0
    max_completion_length: int = 256
    batch_size: int = field(default=256, metadata={"help": "Sequences per generate() call."})
    seed: int = 0
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16 or float16."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ...; default: cuda when available."})
    output: str | None = field(default=None, metadata={"help": "Write the summary JSON (and a .samples.jsonl) here."})
    pretrain_config: str | None = None


def load_for_eval(model: str, dtype: str = "auto", device: str | None = None, pretrain_config: str | None = None):
    """(model, tokenizer, is_nano) ready for sampling on ``device``."""
    import torch  # noqa: PLC0415
    from trl import ModelConfig  # noqa: PLC0415

    from tinyzero.models import is_nano_tokenizer, load_model_and_tokenizer  # noqa: PLC0415

    model_obj, tokenizer = load_model_and_tokenizer(model, ModelConfig(dtype=dtype), pretrain_config)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model_obj.to(device).eval()
    return model_obj, tokenizer, is_nano_tokenizer(tokenizer)


def main(args: EvalArguments) -> dict:
    from tinyzero.data import load_task_data  # noqa: PLC0415
    from tinyzero.evaluate import evaluate_model, sampling_config  # noqa: PLC0415
    from tinyzero.tasks import TASKS  # noqa: PLC0415

    start = time.time()
    model, tokenizer, nano = load_for_eval(args.model, args.dtype, args.device, args.pretrain_config)
    template = args.template or ("nano" if nano else "base")
    data = load_task_data(args.dataset, split=args.split, template=template)
    rows = [dict(r) for r in data.select(range(min(args.n, len(data))))]
    config = sampling_config(model, tokenizer, args.max_completion_length, args.temperature, args.top_p)
    summary, records = evaluate_model(
        model, tokenizer, TASKS[args.task], rows, config, k=args.k, batch_size=args.batch_size, seed=args.seed
    )
    if nano and args.task == "countdown":
        # The nano trace format can be read back: report how reliably the model checks its own hits.
        from tinyzero.corpus import search_summary  # noqa: PLC0415
        from tinyzero.grader import thinking_text  # noqa: PLC0415

        summary.update(search_summary(
            [thinking_text(r["completion"]) for r in records], [rows[r["problem"]]["target"] for r in records]
        ))
    summary = {
        "model": args.model,
        "dataset": args.dataset,
        "split": args.split,
        "template": template,
        "temperature": args.temperature,
        "max_completion_length": args.max_completion_length,
        **summary,
        "seconds": round(time.time() - start, 1),
    }
    print(format_table(summary))
    print(json.dumps(summary))
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"args": asdict(args), **summary}, indent=2) + "\n")
        with open(out.with_suffix(".samples.jsonl"), "w") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
    return summary


def format_table(summary: dict) -> str:
    rows = [(k, v) for k, v in summary.items() if k not in ("model", "dataset", "split")]
    lines = [f"{summary['model']} on {summary['dataset']}/{summary['split']}", "| metric | value |", "|---|---:|"]
    for key, value in rows:
        lines.append(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> EvalArguments:
    from trl import TrlParser  # noqa: PLC0415

    (args,) = TrlParser((EvalArguments,)).parse_args_and_config(list(sys.argv[1:] if argv is None else argv))
    return args


if __name__ == "__main__":
    main(parse_args())
