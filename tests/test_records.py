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
