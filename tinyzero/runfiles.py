"""The files of a training run: ``metrics.jsonl`` and ``samples.jsonl``, read and written here.

``metrics.jsonl``: one JSON object per logged step, with a ``step`` key (the columns are
listed in ``tinyzero.callbacks``). ``samples.jsonl``: a few held-out completions per eval.
JSON has no NaN or inf: they are written as null, as TRL does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"


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


def rewrite_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.touch()
    append_jsonl(tmp, rows)
    tmp.replace(path)


def summarize_run(history: list[dict[str, Any]], steps: int, out: Path, wall_seconds: float) -> dict:
    """Steps, time, and held-out accuracy / thinking length at the first and last evals."""
    evals = [r for r in history if "eval/accuracy" in r]
    final = next((r for r in reversed(history) if "train_runtime" in r), {})
    summary = {
        "steps": steps,
        "wall_seconds": round(wall_seconds, 1),
        "train_runtime": final.get("train_runtime"),
        "output_dir": str(out),
        "metrics": str(out / METRICS_FILE),
        "samples": str(out / SAMPLES_FILE),
        "plots": str(out / "plots"),
    }
    if evals:
        for key in ("accuracy", "thinking_length"):
            summary[f"eval_{key}_first"] = evals[0].get(f"eval/{key}")
            summary[f"eval_{key}_last"] = evals[-1].get(f"eval/{key}")
        summary["eval_steps"] = [evals[0]["step"], evals[-1]["step"]]
    return summary


def write_summary(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def format_summary(s: dict) -> str:
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
    lines.append(f"  plot                {s['plots']}/overview.png  (all plots: {s['plots']}/; again: python -m tinyzero.plot {s['output_dir']})")
    return "\n".join(lines)
