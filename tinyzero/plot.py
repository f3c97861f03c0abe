"""Plots and a readable sample table for a training run.

    python -m tinyzero.plot runs/nano          # writes runs/nano/plots/*.png and samples.md
    python -m tinyzero.plot --compare runs/a runs/b --out ab.png   # runs overlaid (seeds, loss types)
    python -m tinyzero.plot --grid benchmarks/results/lr2e-4 benchmarks/results/lr2e-4_seeds7_3 --out docs/curve.png
                                               # a seed grid's learning curve: median and range per step

Reads ``metrics.jsonl`` (else the ``log_history`` of ``trainer_state.json`` in the run or its
last checkpoint) and ``samples.jsonl`` (see ``tinyzero.callbacks`` for the columns). Writes:

- ``plots/accuracy.png``: held-out and training accuracy vs step
- ``plots/thinking_length.png``: characters of thinking, held-out and training
- ``plots/reward.png``: mean reward (and the format rate) of the training batches
- ``plots/completion_length.png``: completion length, held-out and training, and truncation
- ``plots/overview.png``: the four side by side: the "aha moment" at a glance
- ``samples.md``: held-out completions of the same problems at a few steps

``compare_runs`` overlays several runs (one colour each) on the same four quantities.
``plot_grid`` reads the ``metrics/*.jsonl`` of seed grids (``benchmarks/experiments/robustness.py``) and
draws held-out accuracy and thinking length per eval step: every run, their median and their
range. The README's picture is this figure of the current recipe's grids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinyzero import cli
from tinyzero.runfiles import METRICS_FILE, SAMPLES_FILE, is_step_row, read_jsonl


def load_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per-step rows of a run: metrics.jsonl, or trainer_state.json's log_history."""
    run = Path(run_dir)
    rows = read_jsonl(run / METRICS_FILE)
    if not rows:
        states = [run / "trainer_state.json"] + sorted(
            run.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[-1])
        )[::-1]
        for state in states:
            if state.is_file():
                rows = json.loads(state.read_text()).get("log_history", [])
                break
    return [r for r in rows if is_step_row(r)]


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


# (title, y label, [(key, label, style)]) per panel
PANELS = {
    "accuracy": (
        "Accuracy",
        "fraction correct",
        [("eval/accuracy", "held-out", "o-"), ("train/accuracy", "training batch", "-")],
    ),
    "thinking_length": (
        "Thinking length",
        "characters inside <think>",
        [("eval/thinking_length", "held-out", "o-"), ("train/thinking_length", "training batch", "-")],
    ),
    "reward": (
        "Reward",
        "mean per completion",
        [("reward", "reward (training batch)", "-"), ("rewards/format_reward/mean", "format rate (weight 0)", "--")],
    ),
    "completion_length": (
        "Completion length",
        "characters / fraction",
        [
            ("eval/completion_length", "held-out (characters)", "o-"),
            ("train/completion_length", "training (characters)", "-"),
            ("eval/truncation_rate", "held-out truncated (right axis)", "x:"),
        ],
    ),
}


def _frame(ax, title: str, ylabel: str, fraction: bool) -> None:
    if fraction:
        ax.set_ylim(-0.02, 1.02)  # a fraction: small gains must look small
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _draw(ax, rows, name: str) -> bool:
    title, ylabel, lines = PANELS[name]
    drawn = False
    twin = None
    for key, label, style in lines:
        x, y = series(rows, key)
        if not x:
            continue
        target = ax
        if "right axis" in label:
            twin = twin or ax.twinx()
            twin.set_ylim(0, 1.05)
            target = twin
        color = "gray" if "right axis" in label else ("C0" if "held-out" in label else "C1")
        target.plot(x, y, style, color=color, label=label, markersize=4, linewidth=1.2 if "o" in style else 0.8)
        drawn = True
    _frame(ax, title, ylabel, fraction=name == "accuracy")
    if drawn:
        handles, labels = ax.get_legend_handles_labels()
        if twin is not None:
            h2, l2 = twin.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.legend(handles, labels, fontsize=8, loc="best")
    return drawn


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write the PNGs and samples.md of a run; returns the files written."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt  # noqa: PLC0415

    run = Path(run_dir)
    rows = load_history(run)
    if not rows:
        raise FileNotFoundError(f"no metrics in {run} (expected {METRICS_FILE} or trainer_state.json)")
    out = run / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PANELS:
        fig, ax = plt.subplots(figsize=(6, 4))
        _draw(ax, rows, name)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        written.append(out / f"{name}.png")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, name in zip(axes.flat, PANELS):
        _draw(ax, rows, name)
    fig.suptitle(f"{run.name}: held-out accuracy and thinking length vs GRPO step")
    fig.tight_layout()
    fig.savefig(out / "overview.png", dpi=110)
    plt.close(fig)
    written.append(out / "overview.png")
    samples = read_jsonl(run / SAMPLES_FILE)
    if samples:
        (run / "samples.md").write_text(samples_markdown(samples))
        written.append(run / "samples.md")
    return written


# (key, title, y label) per panel of the comparison figure
COMPARE_PANELS = (
    ("eval/accuracy", "Held-out accuracy", "fraction correct"),
    ("eval/thinking_length", "Held-out thinking length", "characters inside <think>"),
    ("train/completion_length", "Training completion length", "characters"),
    ("reward", "Training reward", "mean per completion"),
)


def compare_runs(run_dirs: list[str | Path], out: str | Path, labels: list[str] | None = None, title: str = "",
                 colors: list[int] | None = None, dashed: list[bool] | None = None) -> Path:
    """One figure, four panels, the runs overlaid: seeds of a recipe, or loss types side by side.
    ``colors`` (a color index per run) and ``dashed`` group runs: one color per method, a line
    style per seed."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    labels = labels or [Path(r).name for r in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"{len(run_dirs)} runs but {len(labels)} labels")
    histories = []
    for run in run_dirs:
        rows = load_history(run)
        if not rows:
            raise FileNotFoundError(f"no metrics in {run} (expected {METRICS_FILE} or trainer_state.json)")
        histories.append(rows)
    fig, axes = plt.subplots(1, len(COMPARE_PANELS), figsize=(4.5 * len(COMPARE_PANELS), 3.8))
    for ax, (key, panel_title, ylabel) in zip(axes, COMPARE_PANELS):
        for i, (rows, label) in enumerate(zip(histories, labels)):
            x, y = series(rows, key)
            marker = "o" if key.startswith("eval/") else None
            ax.plot(x, y, color=f"C{colors[i] if colors else i}", marker=marker, label=label, markersize=4, linewidth=1.2,
                    linestyle="--" if dashed and dashed[i] else "-")
        _frame(ax, panel_title, ylabel, fraction=key == "eval/accuracy")
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return _save(fig, out, dpi=110)


GRID_PANELS = (
    ("eval/accuracy", "Held-out accuracy", "fraction correct"),
    ("eval/thinking_length", "Held-out thinking length", "characters inside <think>"),
)


def grid_curves(grid_dirs: list[str | Path]) -> tuple[int, dict[str, dict[int, list[float]]]]:
    """(number of runs, {key: {eval step: one value per run}}) from the grids' metrics/*.jsonl."""
    files = [f for d in grid_dirs for f in sorted(Path(d).glob("metrics/*.jsonl"))]
    if not files:
        raise FileNotFoundError(f"no metrics/*.jsonl under {', '.join(str(d) for d in grid_dirs)} (a seed grid's folder)")
    curves: dict[str, dict[int, list[float]]] = {key: {} for key, _, _ in GRID_PANELS}
    for f in files:
        rows = [r for r in read_jsonl(f) if is_step_row(r)]
        for key, by_step in curves.items():
            for step, value in zip(*series(rows, key)):
                by_step.setdefault(step, []).append(value)
    for key, by_step in curves.items():
        short = [s for s, v in by_step.items() if len(v) != len(files)]
        if short:
            raise ValueError(f"{key}: steps {short} are missing from some of the {len(files)} runs")
    return len(files), curves


def plot_grid(grid_dirs: list[str | Path], out: str | Path, title: str = "") -> Path:
    """Held-out accuracy and thinking length per eval step over a grid's runs: each run thin,
    the median bold, the range between the lowest and highest run shaded."""
    import statistics  # noqa: PLC0415

    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n, curves = grid_curves(grid_dirs)
    fig, axes = plt.subplots(1, len(GRID_PANELS), figsize=(11, 3.8))
    for ax, (key, panel_title, ylabel) in zip(axes, GRID_PANELS):
        steps = sorted(curves[key])
        values = [curves[key][s] for s in steps]
        for i in range(n):
            ax.plot(steps, [v[i] for v in values], color="C0", alpha=0.25, linewidth=0.8)
        ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color="C0", alpha=0.12,
                        label=f"range over {n} runs")
        ax.plot(steps, [statistics.median(v) for v in values], "o-", color="C0", linewidth=2, markersize=4,
                label="median over the runs")
        _frame(ax, panel_title, ylabel, fraction=False)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title or f"{n} GRPO runs ({', '.join(Path(d).name for d in grid_dirs)}): the held-out eval during training, one sampling seed")
    return _save(fig, out, dpi=100)


def _save(fig, out: str | Path, dpi: int) -> Path:
    """Write ``fig`` to ``out`` (its folder made) and close it."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 (matplotlib is slow to import)

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _cell(text: str, limit: int = 600) -> str:
    text = text if len(text) <= limit else text[:limit] + " [...]"
    # Markdown tables: one line per row and no bare pipes; tags would be read as HTML.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|").replace("\n", "<br>")


def samples_markdown(samples: list[dict[str, Any]], max_steps_shown: int = 5) -> str:
    """A table per problem: its completion at the first, last and a few evenly spaced evals."""
    steps = sorted({s["step"] for s in samples})
    if len(steps) > max_steps_shown:
        picks = {steps[round(i * (len(steps) - 1) / (max_steps_shown - 1))] for i in range(max_steps_shown)}
        steps = sorted(picks)
    by_problem: dict[int, list[dict[str, Any]]] = {}
    for s in samples:
        if s["step"] in steps:
            by_problem.setdefault(s.get("index", 0), []).append(s)
    lines = ["# Held-out samples", "", "The same held-out problems at several training steps (one sample each).", ""]
    for index, rows in sorted(by_problem.items()):
        prompt = rows[0].get("prompt", "")
        if not isinstance(prompt, str):  # chat template: a message list
            prompt = "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in prompt if isinstance(m, dict))
        lines += [f"## Problem {index}", "", "```", prompt.strip(), "```", ""]
        lines += ["| step | correct | thinking | completion |", "|---:|:---:|---:|---|"]
        for r in sorted(rows, key=lambda r: r["step"]):
            mark = "yes" if r.get("correct") else "no"
            lines.append(
                f"| {r['step']} | {mark} | {r.get('thinking_length', '')} | {_cell(r.get('completion', ''))} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = cli.ArgumentParser(prog="python -m tinyzero.plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help="run folder(s): one to plot, several with --compare")
    parser.add_argument("--compare", action="store_true", help="overlay the runs in one figure (needs --out)")
    parser.add_argument("--grid", nargs="+", metavar="DIR", help="seed grid folder(s) (benchmarks/experiments/robustness.py): "
                        "median and range per step over their runs (needs --out)")
    parser.add_argument("--out", help="the comparison figure's path (.png)")
    parser.add_argument("--labels", nargs="+", help="one legend label per run (default: folder names)")
    parser.add_argument("--title", default="", help="the comparison figure's title")
    args = parser.parse_args(argv)
    if args.grid:
        if args.runs or args.compare or args.labels or not args.out:
            parser.error("--grid DIR [DIR ...] --out FILE.png takes no run folders, --compare or --labels")
        paths = [plot_grid(args.grid, args.out, args.title)]
    elif not args.runs:
        parser.error("give a run folder (or --grid DIR ... --out FILE.png)")
    elif args.compare:
        if not args.out:
            parser.error("--compare needs --out FILE.png")
        if args.labels and len(args.labels) != len(args.runs):
            parser.error(f"{len(args.labels)} --labels for {len(args.runs)} runs")
        paths = [compare_runs(args.runs, args.out, args.labels, args.title)]
    else:
        if len(args.runs) != 1 or args.out or args.labels:
            parser.error("plot one run at a time; overlay several with --compare ... --out FILE.png")
        paths = plot_run(args.runs[0])
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    cli.run(main)
