"""Evaluate a model on held-out problems: accuracy (pass@1), pass@k, lengths, format, search.

    python -m tinyzero.eval --model runs/nano                       # a trained run
    python -m tinyzero.eval --model nano --n 500 --k 1 --temperature 0.6 --seeds 0 1 2
    python -m tinyzero.eval --model runs/nano/checkpoint-50 --output eval.json
    python -m tinyzero.eval --model Qwen/Qwen2.5-1.5B --dataset countdown --template base

Samples ``k`` completions for each of the first ``n`` problems of a split and grades them with
the data's task (``tinyzero.generation.evaluate_model``: the same definition of correct as the
training reward). With several ``--seeds`` every figure is the mean over the seeds, with its
spread (``<key>_std``, ``<key>_min``, ``<key>_max``): one seed of 500 problems moves accuracy
by 0.01-0.02, so a verdict needs several. Prints a table and a JSON object.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tinyzero import cli


@dataclass
class EvalArguments:
    model: str = field(default="nano", metadata={"help": "A model folder or run, 'nano', or a Hub id."})
    dataset: str = field(default="countdown_nano", metadata={"help": "Shipped dataset name or a .jsonl/.parquet path."})
    task: str | None = field(default=None, metadata={"help": "Only for a user file whose columns don't tell the task."})
    split: str = "test"
    template: str | None = field(default=None, metadata={"help": "nano, base or chat; default: nano for nano models, else base."})
    n: int = field(default=500, metadata={"help": "Problems (the first n of the split)."})
    k: int = field(default=8, metadata={"help": "Samples per problem."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (0: greedy, then use k=1)."})
    top_p: float = 1.0
    max_completion_length: int = 256
    batch_size: int = field(default=256, metadata={"help": "Sequences per generate() call."})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "Sampling seeds; figures are means over them."})
    sampler: str = field(default="fastgen_exact", metadata={"help": "hf, fastgen or fastgen_exact (tinyzero.fastgen; HF's random stream)."})
    sampling_workers: int | None = field(
        default=None,
        metadata={"help": "fastgen samplers: threads a decode step's rows are split over (the same tokens for any "
                  "number); default 2 (benchmarks/results/sampling_speed.md), 1 for hf."},
    )
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16 or float16."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ...; default: cuda when available."})
    output: str | None = field(default=None, metadata={"help": "Write the summary JSON (and a .samples.jsonl) here."})
    pretrain_config: str | None = None
    torch_threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads for torch; default: 1 for a nano model (two collapse when another process "
                  "is busy), torch's own choice otherwise."},
    )

    def __post_init__(self):
        if self.n < 1 or self.k < 1:
            raise ValueError(f"--n and --k must be at least 1, got n={self.n} k={self.k}")
        if not self.seeds:
            raise ValueError("--seeds needs at least one seed")
        from tinyzero.fastgen import check_sampler, workers_for  # noqa: PLC0415 (torch: only once flags are parsed)

        check_sampler(self.sampler)
        self.sampling_workers = workers_for(self.sampler, self.sampling_workers)


def main(args: EvalArguments) -> dict:
    from tinyzero.fastgen import sampler  # noqa: PLC0415
    from tinyzero.generation import evaluate_model, sampling_config  # noqa: PLC0415
    from tinyzero.models import load_for_inference  # noqa: PLC0415
    from tinyzero.nano.tokenizer import is_nano_tokenizer  # noqa: PLC0415
    from tinyzero.tasks import get_task  # noqa: PLC0415
    from tinyzero.tasks.data import load_task_data  # noqa: PLC0415

    start = time.time()
    model, tokenizer = load_for_inference(args.model, args.dtype, args.device, args.pretrain_config)
    sample = sampler(args.sampler, args.sampling_workers)  # falls back to model.generate wherever fastgen does not apply
    nano = is_nano_tokenizer(tokenizer)
    if args.torch_threads or nano:
        import torch  # noqa: PLC0415

        torch.set_num_threads(args.torch_threads or 1)
    template = args.template or ("nano" if nano else "base")
    data = load_task_data(args.dataset, split=args.split, template=template, task=args.task)
    rows = [dict(r) for r in data.select(range(min(args.n, len(data))))]
    task = get_task(rows[0]["task"])
    config = sampling_config(model, tokenizer, args.max_completion_length, args.temperature, args.top_p)
    per_seed, records = [], []
    for seed in args.seeds:
        figures, seed_records = evaluate_model(
            model, tokenizer, task, rows, config, k=args.k, batch_size=args.batch_size, seed=seed,
            search=nano and task.name == "countdown", sample=sample,
        )
        per_seed.append(figures)
        records += [{"seed": seed, **r} for r in seed_records]
    summary = {
        "model": args.model,
        "dataset": args.dataset,
        "task": task.name,
        "split": args.split,
        "template": template,
        "temperature": args.temperature,
        "max_completion_length": args.max_completion_length,
        "seeds": list(args.seeds),
        **mean_over_seeds(per_seed),
        "seconds": round(time.time() - start, 1),
    }
    print(format_table(summary))
    print(json.dumps(summary))
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"args": asdict(args), **summary, "per_seed": per_seed}, indent=2) + "\n")
        with open(out.with_suffix(".samples.jsonl"), "w") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
    return summary


def mean_over_seeds(per_seed: list[dict]) -> dict:
    """Each figure's mean over seeds; with two or more seeds also its std, min and max."""
    out: dict = {}
    for key, value in per_seed[0].items():
        values = [s[key] for s in per_seed]
        if key in ("problems", "k") or not isinstance(value, (int, float)):
            out[key] = value
            continue
        out[key] = statistics.fmean(values)
        if len(values) > 1:
            out[f"{key}_std"] = statistics.stdev(values)
            out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
    return out


def format_table(summary: dict) -> str:
    skip = {"model", "dataset", "split", "seeds"}
    lines = [f"{summary['model']} on {summary['dataset']}/{summary['split']}, seeds {summary['seeds']}",
             "| metric | value |", "|---|---:|"]
    for key, value in summary.items():
        if key in skip or key.endswith(("_std", "_min", "_max")):
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        if f"{key}_std" in summary:
            shown += f" ± {summary[f'{key}_std']:.2g} ({summary[f'{key}_min']:.4g}..{summary[f'{key}_max']:.4g})"
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> EvalArguments:
    (args,) = cli.parse((EvalArguments,), argv, prog="python -m tinyzero.eval")
    return args


if __name__ == "__main__":
    cli.run(main, parse_args())
