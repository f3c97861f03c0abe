"""The current recipe's headline figures, read from its records, and the command that writes
them into the text a user reads.

    python -m tinyzero.records            # print the figures and the blocks they make
    python -m tinyzero.records --write    # rewrite the marked regions of README.md and the notebooks
    python -m tinyzero.records --check    # exit 1, naming each marked region the records disagree with

``benchmarks/results/CURRENT.json`` names the current recipe's records: its seed grids (written
by ``benchmarks/experiments/robustness.py``: ``grid.json``, ``table.md``, ``metrics/``) and the speed run of
its main command (``benchmarks/perf/speed.py --full``). Every figure below is computed from those
files; none is typed into this module. A text carries a block between marker comments,
``<!-- records:NAME -->`` and ``<!-- /records:NAME -->`` (in a notebook, inside a markdown
cell), and ``--write`` replaces what is between them with ``render(NAME)``. tests/test_records.py
fails when a marked region and the records disagree.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyzero import cli
from tinyzero.paths import REPO

RESULTS = REPO / "benchmarks" / "results"
CURRENT = "CURRENT.json"
# The texts that carry marked regions. INSTRUCTORS.md and others may add markers too.
TEXTS = ("README.md", "notebooks/INSTRUCTORS.md", *(f"notebooks/0{i}_{n}.ipynb" for i, n in (
    (1, "task"), (2, "grpo_by_hand"), (3, "base_model"), (4, "training"), (5, "aha_moment"),
    (6, "length_bias"), (7, "beyond_r1_zero"))))
MARKER = re.compile(r"<!-- records:(?P<name>[a-z_]+) -->\n(?P<body>.*?)<!-- /records:(?P=name) -->", re.S)


class RecordError(ValueError):
    """A record is missing or malformed (a one-line message naming the file)."""


def _json(path: Path) -> Any:
    if not path.is_file():
        raise RecordError(f"{path}: no such record")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not JSON ({e})") from None


@dataclass
class Records:
    """The current recipe's records, loaded."""

    results: Path
    current: dict[str, Any]
    grids: dict[str, dict[str, Any]]  # folder name -> grid.json
    verdict_lines: dict[str, list[str]]  # folder name -> the verdict lines of its table.md
    main: dict[str, Any]  # speed_full JSON, the "new" checkout's main command
    main_header: dict[str, str]  # date, host, cpus, commit of that run
    suite: dict[str, str]  # the last run of suite_time.md: run, checkout, how, wall, result
    ablations: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # sheet row -> its grid.json (None: not recorded)
    ablation_times: dict[str, dict[str, str]] = field(default_factory=dict)  # sheet row -> ablations/README.md's line


def load(results: str | Path = RESULTS) -> Records:
    results = Path(results)
    current = _json(results / CURRENT)
    for key in ("grids", "recipe", "recipe_commit", "main_command"):
        if key not in current:
            raise RecordError(f"{results / CURRENT}: no '{key}'")
    grids, verdicts = {}, {}
    for name in current["grids"]:
        grid = _json(results / name / "grid.json")
        if not grid.get("rows"):
            raise RecordError(f"{results / name / 'grid.json'}: no rows")
        grids[name] = grid
        table = results / name / "table.md"
        lines = table.read_text().splitlines() if table.is_file() else []
        verdicts[name] = [ln for ln in lines if ln.startswith(("median run:", "worst run:"))]
    mc = current["main_command"]
    speed = _json(results / mc["json"])
    if "new" not in speed or "wall_s" not in speed["new"]:
        raise RecordError(f"{results / mc['json']}: no 'new' main command with 'wall_s'")
    report = results / mc["report"]
    header = _run_header(report, mc["run"])
    return Records(results, current, grids, verdicts, speed["new"], header, _last_suite_run(results / SUITE),
                   *_ablations(results))


SUITE = "suite_time.md"
# The ablation sheet of notebooks/INSTRUCTORS.md: each row's folder under benchmarks/results/ablations/
# (robustness.py's grid on pretrain seed 0) and the change it makes to the recipe (its --train_args).
# None: not a recipe key (the no-baseline row changes the capstone's code).
ABLATIONS = "ablations"
ABLATION_ROWS = (
    ("no-baseline", None),
    ("scale-rewards", "--scale_rewards group"),
    ("loss-grpo", "--loss_type grpo"),
    ("loss-dr-grpo", "--loss_type dr_grpo"),
    ("beta", "--beta 0.04"),
    ("group-8", "--num_generations 8"),
    ("temperature", "--temperature 1.0"),
    ("mask", "--mask_truncated_completions true"),
)


def _ablations(results: Path) -> tuple[dict[str, dict[str, Any] | None], dict[str, dict[str, str]]]:
    """Each sheet row's grid.json (None where the row has no folder) and its line of
    ablations/README.md's table: | row | date | wall | machine | commit | command |."""
    folder = results / ABLATIONS
    known = dict(ABLATION_ROWS)
    if folder.is_dir():
        for d in folder.iterdir():
            if d.is_dir() and d.name not in known:
                raise RecordError(f"{d}: not a row of the ablation sheet (rows: {', '.join(known)})")
    grids: dict[str, dict[str, Any] | None] = {}
    for row, change in ABLATION_ROWS:
        path = folder / row / "grid.json"
        if not path.parent.is_dir():
            grids[row] = None
            continue
        grid = _json(path)
        args = grid.get("args", {})
        if not grid.get("rows"):
            raise RecordError(f"{path}: no rows")
        if args.get("pretrain_seeds") != [0]:
            raise RecordError(f"{path}: pretrain seeds {args.get('pretrain_seeds')}, not the shipped base model (seed 0) alone")
        if change is None or args.get("train_args") != change:
            raise RecordError(f"{path}: train_args {args.get('train_args')!r}, not the row's change {change!r}")
        grids[row] = grid
    readme = folder / "README.md"
    times = {}
    if readme.is_file():
        for m in re.finditer(r"^\| `(?P<row>[a-z0-9-]+)` \| (?P<date>[^|]+?) \| (?P<wall>[^|]+?) \| (?P<machine>[^|]+?) \| (?P<commit>\w+) \|",
                             readme.read_text(), re.M):
            times[m["row"]] = m.groupdict()
    return grids, times


def _last_suite_run(path: Path) -> dict[str, str]:
    """The last row of suite_time.md's table: | run | checkout | how | wall | result |."""
    if not path.is_file():
        raise RecordError(f"{path}: no such record")
    rows = re.findall(r"^\| (\d+) \| (\w+) \| (.*) \| ([^|]*) \| ([^|]*) \|?$", path.read_text(), re.M)
    if not rows:
        raise RecordError(f"{path}: no table rows '| run | checkout | how | wall | result |'")
    run, checkout, how, wall, result = max(rows, key=lambda r: int(r[0]))
    return {"run": run, "checkout": checkout, "how": how, "wall": wall.strip().strip("*"), "result": result.strip().strip("*")}


def _run_header(report: Path, run: int) -> dict[str, str]:
    """Date, host and commit of run N of a speed_full.md report: the line speed.py prints first,
    '# benchmarks/perf/speed.py, <date>, <host>, <n> CPUs, this checkout <commit>, ...'."""
    if not report.is_file():
        raise RecordError(f"{report}: no such record")
    text = report.read_text()
    section = re.search(rf"^## Run {run} \(.*?(?=^## |\Z)", text, re.S | re.M)
    head = section and re.search(
        r"^# benchmarks/(?:perf/)?speed\.py, (?P<date>[^,]+), (?P<host>[^,]+), (?P<cpus>\d+) CPUs, this checkout (?P<commit>\w+)",
        section.group(0), re.M)
    if not head:
        raise RecordError(f"{report}: no run {run} with a speed.py header line")
    machine = re.search(r"Machine: (?P<m>[^.]*\))", text)
    return {**head.groupdict(), "machine": machine.group("m").replace("\n", " ") if machine else f"{head['cpus']} CPUs"}


def runs(rec: Records) -> list[dict[str, Any]]:
    return [dict(r, grid=name) for name, g in rec.grids.items() for r in g["rows"]]


def figures(rec: Records) -> dict[str, Any]:
    """The headline: median and worst over every run of the current grids."""
    rows = runs(rec)
    acc_x = [r["accuracy_x"] for r in rows]
    worst = min(rows, key=lambda r: r["accuracy_x"])
    return {
        "runs": len(rows),
        "grids": len(rec.grids),
        "base_models": len({r["pretrain_seed"] for r in rows}),
        "grpo_seeds": sorted({r["grpo_seed"] for r in rows}),
        "eval_seeds": len(next(iter(rec.grids.values()))["args"]["eval_seeds"]),
        "eval_n": next(iter(rec.grids.values()))["args"]["n"],
        "median_base": statistics.median(r["base_accuracy"] for r in rows),
        "median_final": statistics.median(r["final_accuracy"] for r in rows),
        "median_x": statistics.median(acc_x),
        "worst_x": worst["accuracy_x"],
        "worst_base": worst["base_accuracy"],
        "worst_final": worst["final_accuracy"],
        "worst_run": f"p{worst['pretrain_seed']}-g{worst['grpo_seed']}",
        "median_base_thinking": statistics.median(r["base_thinking"] for r in rows),
        "median_final_thinking": statistics.median(r["final_thinking"] for r in rows),
        "median_thinking_x": statistics.median(r["thinking_x"] for r in rows),
        "worst_thinking_x": min(r["thinking_x"] for r in rows),
        "worst_truncation": max(r["final truncation_rate"] for r in rows),
        "hit_yes_min": min(r["final search/hit_yes_rate"] for r in rows),
        "hit_yes_max": max(r["final search/hit_yes_rate"] for r in rows),
        "format_min": min(r["final format_rate"] for r in rows),
        "dates": sorted({g["date"][:10] for g in rec.grids.values()}),
        "machine": next(iter(rec.grids.values()))["machine"],
        "commit": rec.current["recipe_commit"],
    }


def _grid_row(name: str, grid: dict[str, Any]) -> str:
    rows = grid["rows"]
    acc_x = [r["accuracy_x"] for r in rows]
    seeds = "/".join(str(s) for s in grid["args"]["grpo_seeds"])
    return (
        f"| `{name}/` | {len(rows)} ({len(grid['args']['pretrain_seeds'])} base x GRPO seeds {seeds}) "
        f"| {statistics.median(r['base_accuracy'] for r in rows):.3f} -> {statistics.median(r['final_accuracy'] for r in rows):.3f} "
        f"| {statistics.median(acc_x):.2f}x | {min(acc_x):.2f}x "
        f"| {statistics.median(r['base_thinking'] for r in rows):.0f} -> {statistics.median(r['final_thinking'] for r in rows):.0f} "
        f"| {min(r['thinking_x'] for r in rows):.2f}x "
        f"| {max(r['final truncation_rate'] for r in rows):.3f} "
        f"| {min(r['final search/hit_yes_rate'] for r in rows):.2f} "
        f"| {min(r['final format_rate'] for r in rows):.2f} |"
    )


def ablation_figures(rec: Records) -> dict[str, dict[str, Any]]:
    """The recipe on the shipped base model (pretrain seed 0, every current grid) and each
    recorded row of the ablation sheet: its runs' final accuracies and ratios, and where its
    range of ratios over GRPO seeds lies against the recipe's range over its seeds."""
    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        xs = [r["accuracy_x"] for r in rows]
        return {"runs": len(rows), "seeds": [r["grpo_seed"] for r in rows], "base": statistics.median(r["base_accuracy"] for r in rows),
                "base_thinking": statistics.median(r["base_thinking"] for r in rows),
                "finals": [r["final_accuracy"] for r in rows], "median_x": statistics.median(xs), "worst_x": min(xs), "best_x": max(xs)}

    recipe = summary([r for r in runs(rec) if r["pretrain_seed"] == 0])
    out = {"recipe": recipe}
    for row, grid in rec.ablations.items():
        if grid is None:
            continue
        f = summary(grid["rows"])
        f["eval_seeds"] = len(grid["args"]["eval_seeds"])
        f["n"] = grid["args"]["n"]
        f["date"] = grid["date"][:10]
        if f["best_x"] < recipe["worst_x"]:
            f["against"] = "lower"
        elif f["worst_x"] > recipe["best_x"]:
            f["against"] = "higher"
        else:
            f["against"] = "within"
        out[row] = f
    return out


def _ablation_block(rec: Records) -> str:
    a = ablation_figures(rec)
    r = a["recipe"]
    recipe_grids = ", ".join(f"`{n}/`" for n in rec.grids)
    lines = [
        ("| row | the change (`--train_args`) | runs (GRPO seeds) | accuracy base -> final, each run "
         "| x its base, median | x worst | against the recipe's spread | recorded |"),
        "|---|---|---|---|---:|---:|---|---|",
        (f"| the recipe | none: {recipe_grids}, pretrain seed 0 | {r['runs']} ({'/'.join(map(str, r['seeds']))}) "
         f"| {r['base']:.3f} -> {', '.join(f'{x:.3f}' for x in r['finals'])} | {r['median_x']:.2f}x | {r['worst_x']:.2f}x "
         f"| its own: {r['worst_x']:.2f}-{r['best_x']:.2f}x | `CURRENT.json` |"),
    ]
    for row, change in ABLATION_ROWS:
        shown = f"`{change}`" if change else "not a recipe key (the capstone's `group_advantages`)"
        if row not in a:
            lines.append(f"| `{row}` | {shown} | not yet recorded | | | | | |")
            continue
        f = a[row]
        against = {"lower": f"lower: {f['worst_x']:.2f}-{f['best_x']:.2f}x, all below the recipe's worst",
                   "higher": f"higher: {f['worst_x']:.2f}-{f['best_x']:.2f}x, all above the recipe's best",
                   "within": f"within it: {f['worst_x']:.2f}-{f['best_x']:.2f}x overlaps {r['worst_x']:.2f}-{r['best_x']:.2f}x"}[f["against"]]
        if abs(f["base"] - r["base"]) > 1e-9 or abs(f["base_thinking"] - r["base_thinking"]) > 1e-9:
            # e.g. the temperature row: the eval follows the training temperature, so the base is measured anew
            against += (f"; its base model's eval is not the recipe's (accuracy {f['base']:.3f}, thinking {f['base_thinking']:.0f} chars "
                        f"against {r['base']:.3f}, {r['base_thinking']:.0f}): compare the x, not the accuracies")
        t = rec.ablation_times.get(row)
        when = f"{f['date']}, {t['wall']}" if t else f"{f['date']} (no wall time in `{ABLATIONS}/README.md`)"
        lines.append(
            f"| `{row}` | {shown} | {f['runs']} ({'/'.join(map(str, f['seeds']))}) "
            f"| {f['base']:.3f} -> {', '.join(f'{x:.3f}' for x in f['finals'])} | {f['median_x']:.2f}x | {f['worst_x']:.2f}x "
            f"| {against} | {when} |")
    recorded = [a[row] for row, _ in ABLATION_ROWS if row in a]
    evals = sorted({(f["eval_seeds"], f["n"]) for f in recorded})
    counts = sorted({f["runs"] for f in recorded})
    seeds = "/".join(map(str, counts)) if counts else "a few"
    how = "; ".join(f"{s} sampling seeds x {n} held-out problems" for s, n in evals) or "none recorded yet"
    lines += ["", (
        f"From `benchmarks/results/{ABLATIONS}/<row>/grid.json` (each row's evals: {how}) and, for the recipe, "
        f"its runs on the same base model in {recipe_grids}. An accuracy is the mean over the sampling seeds; "
        "x is a run's final accuracy over its base model's. \"Against the recipe's spread\" compares the row's range "
        "of x over its GRPO seeds with the recipe's range over its own: lower or higher only when the two ranges do "
        f"not overlap. With {seeds} seeds a row against {r['runs']} for the recipe this is a small sample: a row within the spread shows no "
        "difference that these seeds can resolve, and one outside it is a reason to run more seeds, not a settled answer. "
        f"Wall time of each grid: `{ABLATIONS}/README.md`.")]
    return "\n".join(lines) + "\n"


BLOCKS = ("headline", "main_command", "table", "hit_check", "suite", "ablations")


def render(name: str, rec: Records) -> str:
    """The markdown block called NAME (what goes between its markers, ending in a newline)."""
    f = figures(rec)
    m, h = rec.main, rec.main_header
    if name == "headline":
        return (
            f"**Over {f['runs']} runs** ({f['base_models']} base models x {len(f['grpo_seeds'])} GRPO seeds, "
            f"each final model measured on all {f['eval_n']} held-out problems at {f['eval_seeds']} sampling seeds): "
            f"held-out accuracy **{f['median_base']:.3f} -> {f['median_final']:.3f}** (medians over the runs), "
            f"**{f['median_x']:.2f}x** its base model on the median run and **{f['worst_x']:.2f}x** on the worst "
            f"({f['worst_run']}: {f['worst_base']:.3f} -> {f['worst_final']:.3f}); "
            f"thinking **{f['median_base_thinking']:.0f} -> {f['median_final_thinking']:.0f} characters** on the median "
            f"({f['worst_thinking_x']:.2f}x on the worst run); truncated at most {f['worst_truncation']:.3f}.\n"
        )
    if name == "main_command":
        evals = f"{m['n_evals']} held-out evals of {m['eval_size']}"
        return (
            f"It takes **{m['wall_s']:.0f} s** ({m['steps']} GRPO steps and {evals}) on {h['machine']}: "
            f"`benchmarks/results/{rec.current['main_command']['report']}` run {rec.current['main_command']['run']}. "
            f"Its held-out accuracy goes "
            f"**{m['accuracy_first']:.3f} -> {m['accuracy_last']:.3f}** (one sampling seed).\n"
        )
    if name == "table":
        lines = [
            ("| grid | runs | accuracy base -> final (median) | x median | x worst "
             "| thinking chars base -> final (median) | thinking x worst | truncated, worst "
             "| hit -> yes, lowest | well-formed, lowest |"),
            "|---|---|---|---:|---:|---|---:|---:|---:|---:|",
        ]
        lines += [_grid_row(n, g) for n, g in rec.grids.items()]
        lines += ["", (f"{', '.join(f['dates'])}; recipe `{rec.current['recipe']}` at {f['commit']}; {f['machine']}. "
                       "Issue 12's targets, as each grid's `table.md` states them:"), ""]
        for n, vs in rec.verdict_lines.items():
            lines += [f"- `{n}/`: " + "; ".join(vs)]
        return "\n".join(lines) + "\n"
    if name == "suite":
        s = rec.suite
        return (f"From a fresh clone the test command took **{s['wall']}** ({s['result']}; "
                f"`benchmarks/results/{SUITE}` run {s['run']}, on the machine named there).\n")
    if name == "ablations":
        return _ablation_block(rec)
    if name == "hit_check":
        return (f"no run loses its check of a true hit ({f['hit_yes_min']:.2f}-{f['hit_yes_max']:.2f} "
                f"of true hits checked \"yes\" at the end).\n")
    raise RecordError(f"no block called '{name}' (known: {', '.join(BLOCKS)})")



def _rewrite(text: str, rec: Records) -> str:
    return MARKER.sub(lambda mt: f"<!-- records:{mt['name']} -->\n{render(mt['name'], rec)}<!-- /records:{mt['name']} -->", text)


def _cells(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The texts of a file: its whole text, or a notebook's markdown cells."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        return nb, ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    return None, [path.read_text()]


def stale(rec: Records, root: Path = REPO, texts: tuple[str, ...] = TEXTS) -> list[str]:
    """'file: block' for every marked region whose text differs from what the records give."""
    out = []
    for rel in texts:
        path = root / rel
        if not path.is_file():
            continue
        for text in _cells(path)[1]:
            for mt in MARKER.finditer(text):
                if mt["body"] != render(mt["name"], rec):
                    out.append(f"{rel}: {mt['name']}")
    return out


def marked(root: Path = REPO, texts: tuple[str, ...] = TEXTS) -> dict[str, list[str]]:
    """The block names marked in each text."""
    found = {}
    for rel in texts:
        path = root / rel
        if path.is_file():
            names = [mt["name"] for text in _cells(path)[1] for mt in MARKER.finditer(text)]
            if names:
                found[rel] = names
    return found


def write(rec: Records, root: Path = REPO, texts: tuple[str, ...] = TEXTS) -> list[str]:
    """Rewrite every marked region from the records; returns the files changed."""
    changed = []
    for rel in texts:
        path = root / rel
        if not path.is_file():
            continue
        nb, _ = _cells(path)
        if nb is None:
            old = path.read_text()
            new = _rewrite(old, rec)
            if new != old:
                path.write_text(new)
                changed.append(rel)
            continue
        dirty = False
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            old = "".join(cell["source"])
            new = _rewrite(old, rec)
            if new != old:
                cell["source"] = new.splitlines(keepends=True)
                dirty = True
        if dirty:
            # the notebooks' saved form: one-space indent, a final newline (as Jupyter writes it)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(rel)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="python -m tinyzero.records", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the marked regions from the records")
    parser.add_argument("--check", action="store_true", help="exit 1 if a marked region disagrees with the records")
    parser.add_argument("--results", default=str(RESULTS), help="the records folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    rec = load(args.results)
    if args.write:
        for rel in write(rec):
            print(f"rewrote {rel}")
        return 0
    if args.check:
        bad = stale(rec)
        for line in bad:
            print(f"stale: {line} (run python -m tinyzero.records --write)")
        return 1 if bad else 0
    for key, value in figures(rec).items():
        print(f"{key}: {value}")
    for name in BLOCKS:
        print(f"\n<!-- records:{name} -->\n{render(name, rec)}<!-- /records:{name} -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
