"""The figures a user reads agree with the records they come from.

Run: pytest tests/test_records.py

README.md and the notebooks carry the current recipe's figures between ``<!-- records:NAME -->``
markers; ``python -m tinyzero.records --write`` writes them from ``benchmarks/results/``. These
tests fail when a marked region and the records disagree, when a headline figure sits in the
README outside a marked region, and when the rendering stops following the records.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path

import pytest

from tinyzero import records
from tinyzero.plot import grid_curves
from tinyzero.plot import main as plot_main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rec():
    return records.load()


def test_every_marked_region_agrees_with_the_records(rec):
    assert records.stale(rec) == [], "run: python -m tinyzero.records --write"


def test_the_readme_quotes_the_headline_the_table_and_the_main_command_from_the_records():
    names = records.marked().get("README.md", [])
    for block in ("headline", "table", "main_command"):
        assert block in names, f"README.md has no <!-- records:{block} --> region"


def test_the_readme_states_no_ratio_or_accuracy_outside_the_marked_regions():
    # A figure typed by hand drifts from its record; the marked regions are written from them.
    text = records.MARKER.sub("", (ROOT / "README.md").read_text())
    ratios = re.findall(r"\b\d+\.\d+x\b", text)
    accuracies = re.findall(r"\b0\.\d{2,3} -> 0\.\d{2,3}\b", text)
    assert not ratios and not accuracies, f"figures outside the marked regions: {ratios + accuracies}"


def _copy_records(tmp_path: Path, rec) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    shutil.copy(rec.results / records.CURRENT, out / records.CURRENT)
    for name in rec.current["grids"]:
        shutil.copytree(rec.results / name, out / name, ignore=shutil.ignore_patterns("evals"))
    mc = rec.current["main_command"]
    shutil.copy(rec.results / mc["json"], out / mc["json"])
    shutil.copy(rec.results / mc["report"], out / mc["report"])
    shutil.copy(rec.results / records.SUITE, out / records.SUITE)
    if (rec.results / records.ABLATIONS).is_dir():
        shutil.copytree(rec.results / records.ABLATIONS, out / records.ABLATIONS, ignore=shutil.ignore_patterns("evals", "metrics"))
    return out


def test_the_blocks_follow_the_records_not_the_text(tmp_path, rec):
    """Change one run's final accuracy in a copy of the records: the headline's worst run and
    the table's grid row change with it, and --check calls the README stale."""
    results = _copy_records(tmp_path, rec)
    first = rec.current["grids"][0]
    grid = json.loads((results / first / "grid.json").read_text())
    worst = min(grid["rows"], key=lambda r: r["accuracy_x"])
    worst["final_accuracy"] = worst["base_accuracy"] * 0.5
    worst["accuracy_x"] = 0.5
    (results / first / "grid.json").write_text(json.dumps(grid))
    changed = records.load(results)
    assert "**0.50x** on the worst" in records.render("headline", changed)
    assert "**0.50x** on the worst" not in records.render("headline", rec)
    assert " | 0.50x | " in records.render("table", changed)
    assert records.stale(changed), "the README should disagree with the changed records"


def test_write_rewrites_a_stale_region_in_markdown_and_in_a_notebook(tmp_path, rec):
    (tmp_path / "README.md").write_text("intro\n<!-- records:headline -->\nold figures\n<!-- /records:headline -->\nend\n")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": [
        "text\n", "<!-- records:hit_check -->\n", "stale\n", "<!-- /records:hit_check -->\n"]},
        {"cell_type": "code", "metadata": {}, "source": ["x = 1\n"], "outputs": [], "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    texts = ("README.md", "n.ipynb")
    assert len(records.stale(rec, tmp_path, texts)) == 2
    assert records.write(rec, tmp_path, texts) == list(texts)
    assert records.stale(rec, tmp_path, texts) == []
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("intro\n") and readme.endswith("end\n") and "old figures" not in readme
    cell = "".join(json.loads((tmp_path / "n.ipynb").read_text())["cells"][0]["source"])
    assert cell.startswith("text\n") and records.render("hit_check", rec) in cell


def test_a_missing_or_broken_record_is_a_one_line_error_naming_the_file(tmp_path, rec):
    with pytest.raises(records.RecordError, match="CURRENT.json: no such record"):
        records.load(tmp_path)
    results = _copy_records(tmp_path, rec)
    (results / rec.current["grids"][0] / "grid.json").write_text("{not json")
    with pytest.raises(records.RecordError, match="grid.json: not JSON"):
        records.load(results)
    with pytest.raises(records.RecordError, match="no block called 'nope'"):
        records.render("nope", rec)


def test_the_readme_picture_is_the_current_grids_curve(tmp_path, rec):
    """The committed picture is what the plot command draws from the current grids' metrics."""
    grids = [rec.results / g for g in rec.current["grids"]]
    n, curves = grid_curves(grids)
    assert n == records.figures(rec)["runs"]
    steps = sorted(curves["eval/accuracy"])
    assert steps[0] == 0 and len(steps) >= 3
    out = tmp_path / "curve.png"
    assert plot_main(["--grid", *map(str, grids), "--out", str(out)]) == [out]
    import matplotlib.image

    assert matplotlib.image.imread(out).shape == matplotlib.image.imread(ROOT / "docs" / "curve.png").shape
    assert "docs/curve.png" in (ROOT / "README.md").read_text()


def test_the_log_runs_newest_first_and_the_archive_index_names_every_entry(rec):
    dates = re.findall(r"^## (\d{4}-\d{2}-\d{2})", (rec.results / "RESULTS.md").read_text(), re.MULTILINE)
    assert dates and dates == sorted(dates, reverse=True), "RESULTS.md: entries newest first"
    archive = rec.results / "archive"
    index = (archive / "INDEX.md").read_text()
    for entry in archive.iterdir():
        if entry.name != "INDEX.md":
            assert f"`{entry.name}" in index, f"archive/INDEX.md has no line for {entry.name}"
    for name in rec.current["grids"]:
        assert not (archive / name).exists(), f"{name} is current and archived"


def test_the_ablation_sheet_reads_its_answers_from_the_records(rec):
    assert "ablations" in records.marked().get("notebooks/INSTRUCTORS.md", []), \
        "notebooks/INSTRUCTORS.md has no <!-- records:ablations --> region"
    block = records.render("ablations", rec)
    for row, change in records.ABLATION_ROWS:
        line = next(ln for ln in block.splitlines() if ln.startswith(f"| `{row}` |"))
        grid = rec.ablations[row]
        if grid is None:
            assert "not yet recorded" in line
            continue
        # every run's final accuracy, the median and the worst ratio, as its grid.json gives them
        assert f"`{change}`" in line
        for r in grid["rows"]:
            assert f"{r['final_accuracy']:.3f}" in line
        xs = [r["accuracy_x"] for r in grid["rows"]]
        assert f"| {statistics.median(xs):.2f}x | {min(xs):.2f}x |" in line
        assert row in rec.ablation_times, f"benchmarks/results/ablations/README.md has no line for `{row}`"


def _synthetic_row(results: Path, rec, row: str, change: str, scale: float) -> None:
    """A row made from the recipe's own pretrain-seed-0 runs, every ratio times SCALE."""
    grid = json.loads((rec.results / rec.current["grids"][0] / "grid.json").read_text())
    grid["rows"] = [dict(r, accuracy_x=r["accuracy_x"] * scale, final_accuracy=r["final_accuracy"] * scale)
                    for r in grid["rows"] if r["pretrain_seed"] == 0]
    grid["args"] = dict(grid["args"], pretrain_seeds=[0], train_args=change)
    (results / records.ABLATIONS / row).mkdir(parents=True, exist_ok=True)
    (results / records.ABLATIONS / row / "grid.json").write_text(json.dumps(grid))


def test_an_ablation_row_follows_its_grid_and_is_compared_with_the_recipes_spread(tmp_path, rec):
    """A row's figures come from its grid.json: change them and the block changes, --check calls
    INSTRUCTORS stale, and the verdict against the recipe's spread is computed from the ratios."""
    results = _copy_records(tmp_path, rec)
    recipe = records.ablation_figures(rec)["recipe"]
    recorded = [row for row, g in rec.ablations.items() if g is not None]
    row, change = next((r, c) for r, c in records.ABLATION_ROWS if c is not None and (r in recorded or not recorded))
    # every ratio below the recipe's worst run: lower; above its best: higher; the recipe itself: within
    for scale, verdict in ((0.5 * recipe["worst_x"] / recipe["best_x"], "lower"), (2 * recipe["best_x"] / recipe["worst_x"], "higher"), (1.0, "within")):
        _synthetic_row(results, rec, row, change, scale)
        changed = records.load(results)
        f = records.ablation_figures(changed)[row]
        assert f["against"] == verdict, (scale, f)
        line = next(ln for ln in records.render("ablations", changed).splitlines() if ln.startswith(f"| `{row}` |"))
        assert f"| {f['median_x']:.2f}x | {f['worst_x']:.2f}x |" in line and verdict in line
        assert "not yet recorded" not in line
    assert "notebooks/INSTRUCTORS.md: ablations" in records.stale(changed)
    # a folder gone: the row reads "not yet recorded" again
    shutil.rmtree(results / records.ABLATIONS / row)
    line = next(ln for ln in records.render("ablations", records.load(results)).splitlines() if ln.startswith(f"| `{row}` |"))
    assert "not yet recorded" in line


def test_an_ablation_folder_must_be_a_row_with_its_own_change(tmp_path, rec):
    results = _copy_records(tmp_path, rec)
    (row, change), (_, other) = [(r, c) for r, c in records.ABLATION_ROWS if c is not None][:2]
    _synthetic_row(results, rec, row, other, 1.0)
    with pytest.raises(records.RecordError, match="not the row's change"):
        records.load(results)
    _synthetic_row(results, rec, row, change, 1.0)
    (results / records.ABLATIONS / "no-such-row").mkdir()
    with pytest.raises(records.RecordError, match="not a row of the ablation sheet"):
        records.load(results)


def test_an_ablation_row_measured_on_another_base_eval_says_so(tmp_path, rec):
    """A row whose base model's eval differs from the recipe's (the temperature row: the eval
    follows the training temperature) says to compare the ratios, not the accuracies."""
    results = _copy_records(tmp_path, rec)
    row, change = next((r, c) for r, c in records.ABLATION_ROWS if c is not None)
    _synthetic_row(results, rec, row, change, 1.0)
    path = results / records.ABLATIONS / row / "grid.json"
    grid = json.loads(path.read_text())
    grid["rows"] = [dict(r, base_accuracy=r["base_accuracy"] / 2) for r in grid["rows"]]
    path.write_text(json.dumps(grid))
    line = next(ln for ln in records.render("ablations", records.load(results)).splitlines() if ln.startswith(f"| `{row}` |"))
    assert "is not the recipe's" in line and "compare the x, not the accuracies" in line
