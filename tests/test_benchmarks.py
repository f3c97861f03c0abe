"""The benchmark scripts' own logic, on hand-written records (the scripts run nothing heavy)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinyzero import grid

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((REPO / "benchmarks").glob("*/*.py"))


def load(name: str):
    """A benchmark script as a module: ``name`` is its path under benchmarks/, e.g. "perf/speed"."""
    spec = importlib.util.spec_from_file_location(name.replace("/", "."), REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_are_grouped_and_edit_no_sys_path():
    assert {p.parent.name for p in SCRIPTS} >= {"experiments", "perf", "analysis"}
    for path in [*SCRIPTS, *(REPO / "notebooks").rglob("*.ipynb")]:
        assert "sys.path" not in path.read_text(), f"{path.relative_to(REPO)} edits sys.path: import the installed package"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.relative_to(REPO / "benchmarks").as_posix())
def test_script_help_runs(path):
    """Each script runs as ``python benchmarks/<group>/<name>.py --help`` with only the package
    importable (PYTHONPATH: this checkout, as ``pip install -e .`` gives a user)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(path), "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_trace_depth_counts_each_attempt_position():
    depth = load("analysis/run_report")
    completions = [
        # 1st attempt: right arithmetic, a miss; 2nd: right arithmetic, a hit checked "yes"
        "<think>3+5=8 8*4=32 vs 23 high\n3*5=15 15+4=19 vs 19 yes\n"
        "wait, let me check: 3*5=15 15+4=19 vs 19 yes</think>\n<answer>(3*5)+4</answer>",
        # 1st attempt: wrong arithmetic (3*5 is not 16); its true value, (3*5)+4 = 19, IS a hit
        "<think>3*5=16 16+4=20 vs 19 high</think>\n<answer>(3*5)+4</answer>",
        "no thinking at all",
    ]
    records = [{"problem": 0, "completion": c} for c in completions]
    table = depth.depth_table(records, targets=[19])
    assert [row["index"] for row in table] == ["1", "2"]  # the self-check line is not an attempt
    first, second = table
    assert first["attempts"] == 2 and first["arithmetic_ok"] == 0.5 and first["hit_rate"] == 0.5
    assert second["attempts"] == 1 and second["arithmetic_ok"] == 1.0 and second["hit_rate"] == 1.0
    assert second["hit_yes"] == 1.0 and first["repeat"] == second["repeat"] == 0.0
    again = [{"problem": 0, "completion": "<think>3+5=8 8*4=32 vs 19 high\n3+5=8 8*4=32 vs 19 high</think>\n<answer>(3+5)*4</answer>"}]
    assert [row["repeat"] for row in depth.depth_table(again, targets=[19])] == [0.0, 1.0]
    assert depth.first_operations(records + again) == {"+": 3 / 5, "*": 2 / 5, "-": 0.0}


def test_trace_depth_rejects_a_file_that_is_not_eval_samples(tmp_path):
    depth = load("analysis/run_report")
    bad = tmp_path / "metrics.jsonl"
    bad.write_text(json.dumps({"step": 0}) + "\n")
    with pytest.raises(SystemExit, match="not an eval samples file"):
        depth.main(["--samples", str(bad)])
    with pytest.raises(SystemExit, match="no such file"):
        depth.main(["--samples", str(tmp_path / "missing.jsonl")])
    with pytest.raises(SystemExit):  # neither run folders nor samples
        depth.main([])


def test_search_probe_splits_completions_by_what_followed_the_first_attempt():
    probe = load("analysis/search_probe")
    row = {"nums": [3, 5, 4], "target": 19}
    completions = [
        # a miss, then another attempt that hits, checked "yes" and answered: reward 1
        "3+5=8 8+4=12 vs 19 low\n3*5=15 15+4=19 vs 19 yes</think>\n<answer>(3*5)+4</answer>",
        "3+5=8 8+4=12 vs 19 low</think>\n<answer>(3+5)+4</answer>",  # a miss, then its answer: 0.1
        "3*5=15 15-4=11 vs 19 low\n3*5=16 16+4=20 vs 19 high",  # went on (with a slip), no answer: 0
        "</think>\n<answer>(3*5)+4</answer>",  # a right guess with no attempt
    ]
    groups = probe.worth_of_going_on(completions, [row], n=4)
    assert groups == {"miss, went on": [1.0, 0.0], "miss, stopped": [0.1], "no attempt": [1.0]}
    by_position = probe.lines_by_position(completions, [row], n=4)
    assert by_position[1] == [True, True, True]
    assert by_position[2] == [True, False]  # 3*5=16 is not a line the writer writes


@pytest.mark.slow
def test_robustness_grid_at_a_tiny_size(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYZERO_HOME", str(tmp_path / "home"))  # the subprocesses' base-model cache
    robustness = load("experiments/robustness")
    pretrain = "--num_traces 64 --max_steps 2 --batch_size 8 --hidden_size 32 --intermediate_size 64 --num_layers 1 --warmup_steps 0"
    train = ("--max_steps 1 --eval_every 0 --num_generations 4 --per_device_train_batch_size 8 --steps_per_generation 1 "
             "--max_completion_length 8 --plot false")
    argv = ["--pretrain_seeds", "0", "3", "--grpo_seeds", "1", "--eval_seeds", "0", "1", "--n", "4", "--jobs", "2",
            "--out", str(tmp_path / "grid"), "--pretrain_args", pretrain, "--train_args", train]
    record = robustness.main(argv)
    r, r3 = record["rows"]
    assert (r["pretrain_seed"], r["grpo_seed"]) == (0, 1) and (r3["pretrain_seed"], r3["grpo_seed"]) == (3, 1)
    assert 0 <= r["base_accuracy"] <= 1 and 0 <= r["final_accuracy"] <= 1 and r["final_accuracy_std"] >= 0
    assert r["base_thinking"] >= 0 and "final search/hit_yes_rate" in r
    evals = json.loads((tmp_path / "grid" / "evals" / "base-p0.json").read_text())
    assert evals["seeds"] == [0, 1] and evals["problems"] == 4 and evals["temperature"] == 0.6  # the recipe's
    table = (tmp_path / "grid" / "table.md").read_text()
    assert "median run:" in table and "| 0 | 1 |" in table and "| 3 | 1 |" in table
    # a second call reuses the finished run and evals: nothing is retrained
    stamp = (tmp_path / "grid" / "runs" / "p0-g1" / "summary.json").stat().st_mtime
    robustness.main(argv)
    assert (tmp_path / "grid" / "runs" / "p0-g1" / "summary.json").stat().st_mtime == stamp


def test_robustness_verdict():
    rows = [
        {"accuracy_x": 5.0, "thinking_x": 4.0, "final truncation_rate": 0.05},
        {"accuracy_x": 4.0, "thinking_x": 3.5, "final truncation_rate": 0.08},
        {"accuracy_x": 2.0, "thinking_x": 3.1, "final truncation_rate": 0.20},
    ]
    v = grid.verdict(rows)
    assert v["median_accuracy_x"] == 4.0 and v["median_accuracy_ok"]
    assert not v["every_accuracy_ok"] and v["every_thinking_ok"] and not v["every_truncation_ok"]


@pytest.mark.slow
def test_speed_benchmark_at_a_tiny_size(tmp_path, capsys):
    """benchmarks/perf/speed.py end to end at tiny sizes; the report with an old checkout and a busy
    run is fed this run's figures (the same measure_checkout makes all three)."""
    speed = load("perf/speed")
    pretrain = ["num_traces=64", "hidden_size=32", "intermediate_size=64", "num_layers=1", "batch_size=8", "warmup_steps=0"]
    train = ["num_generations=4", "per_device_train_batch_size=8", "steps_per_generation=1", "max_completion_length=8",
             "eval_size=8", "eval_batch_size=8", "plot=false"]
    out = tmp_path / "speed.json"
    argv = ["--pretrain_steps", "3", "--grpo_steps", "2", "--eval_n", "4",
            "--pretrain_set", *pretrain, "--train_set", *train, "--workdir", str(tmp_path / "work"), "--json", str(out)]
    assert speed.main(argv) == 0
    record = json.loads(out.read_text())
    new = record["new"]
    assert new["pretrain"]["steps"] == 3 and new["grpo"]["steps"] == 2 and new["eval"]["n"] == 4
    assert new["pretrain"]["recipe_steps"] > 3 and new["grpo"]["recipe_steps"] > 2  # the projection uses the recipe's counts
    assert new["main_projected_s"] > new["grpo"]["step_s"] * new["grpo"]["recipe_steps"]
    assert new["pretrain"]["shipped"]  # this checkout's main command loads the shipped base model
    for phase in ("pretrain_step", "generation_step", "update_step", "eval"):
        assert record["floors"][phase]["flops"] > 0 and record["floors"][phase]["s"] > 0
    assert "| pretraining, per step |" in capsys.readouterr().out
    both = speed.report(new, new, new, record["floors"])
    assert "old / new" in both and "| 1.00x |" in both and "= 1.00x (target <= 2x: met)" in both


@pytest.mark.slow
def test_speed_benchmark_full_main_commands_at_a_tiny_size(tmp_path, capsys):
    """--full runs the real main command (here this checkout's only, loading the shipped base
    model) and splits its wall time; the report with an old checkout and a busy run is fed this
    run's figures (the same measure_main makes all three)."""
    speed = load("perf/speed")
    train = ["max_steps=2", "eval_every=2", "num_generations=4", "per_device_train_batch_size=8", "steps_per_generation=1",
             "max_completion_length=8", "eval_size=8", "eval_batch_size=8", "plot=false", "save_strategy=no"]
    out = tmp_path / "speed.json"
    argv = ["--full", "--train_set", *train, "--workdir", str(tmp_path / "work"), "--json", str(out)]
    assert speed.main(argv) == 0
    new = json.loads(out.read_text())["new"]
    assert new["steps"] == 2 and new["n_evals"] == 2 and not new["pretrained"]  # the shipped base model, loaded
    assert 0 < new["generation_s"] < new["step_s"] < new["wall_s"] and new["rest_s"] > 0
    assert 0 < new["eval_s"] < new["rest_s"]  # the evals' own time/eval, a part of the rest
    assert new["accuracy_first"] is not None
    printed = capsys.readouterr().out
    assert "| main command, wall |" in printed and "of which the 2 held-out evals" in printed
    assert re.search(r"sampling floors, linear layers \+ attention: GRPO sampling [\d.]+ s \+ [\d.e-]+ s, evals .* GB/s \(copy\)", printed)
    both = speed.report_main(new, new, new, speed.parse(argv))
    assert "old / new" in both and "| 1.00x |" in both and "= 1.00x (target <= 2x: met)" in both


def test_same_run(tmp_path, capsys):
    """benchmarks/analysis/same_run.py: equal in every figure but the timings, or the first difference."""
    same_run = load("analysis/same_run")
    rows = [{"step": 0, "eval/accuracy": 0.25, "time/eval": 1.0}, {"step": 1, "loss": 0.5, "step_time": 2.0, "time/generation": 1.0}]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join(json.dumps(r) for r in rows))
    rows[0]["time/eval"], rows[1]["step_time"] = 9.0, 7.0  # timings differ: still the same run
    b.write_text("\n".join(json.dumps(r) for r in rows))
    assert same_run.main([str(a), str(b)]) == 0
    assert "all 4 non-timing figures equal" in capsys.readouterr().out  # step, eval/accuracy; step, loss
    rows[1]["loss"] = 0.5000001
    b.write_text("\n".join(json.dumps(r) for r in rows))
    assert same_run.main([str(a), str(b)]) == 1
    assert "row 1 (step 1): loss 0.5 != 0.5000001" in capsys.readouterr().out
    b.write_text("not json")
    with pytest.raises(SystemExit, match="cannot read"):
        same_run.main([str(a), str(b)])


def test_speed_rejects_a_failing_command(tmp_path):
    speed = load("perf/speed")
    with pytest.raises(SystemExit, match="failed"):
        speed.run(REPO, tmp_path, ["-m", "tinyzero.pretrain", "--no_such_flag", "1"], tmp_path / "log")


TINY_TRAIN = ("--max_steps 1 --eval_every 0 --num_generations 4 --per_device_train_batch_size 8 --steps_per_generation 1 "
              "--max_completion_length 8 --plot false")


@pytest.mark.slow
def test_variants_at_a_tiny_size(tmp_path, monkeypatch):
    """benchmarks/experiments/variants.py: each variant trains from the same base model with its one change,
    the table has a row per run, the figure is written, and --reuse takes a finished run as is."""
    monkeypatch.setenv("TINYZERO_HOME", str(tmp_path / "home"))  # pretraining seed 0: the shipped model, not built
    variants = load("experiments/variants")
    out = tmp_path / "v"
    argv = ["--variants", "rloo", "flipped", "--seeds", "1", "--eval_seeds", "0", "1", "--n", "4", "--jobs", "2",
            "--out", str(out), "--train_args", TINY_TRAIN]
    record = variants.main(argv)
    assert [(r["variant"], r["seed"]) for r in record["rows"]] == [("rloo", 1), ("flipped", 1)]
    for r in record["rows"]:
        assert 0 <= r["accuracy"] <= 1 and r["accuracy_std"] >= 0
    assert (out / "variants.png").stat().st_size > 0 and "| base model |" in (out / "table.md").read_text()
    again = variants.main(["--variants", "grpo", "rloo", *argv[3:], "--reuse", f"grpo-g1={out / 'runs' / 'rloo-g1'}"])
    assert again["runs"]["grpo-g1"] == str(out / "runs" / "rloo-g1")  # reused, not trained
    assert not (out / "runs" / "grpo-g1").exists()


@pytest.mark.slow
def test_distillation_comparison_at_a_tiny_size(tmp_path, monkeypatch):
    """benchmarks/experiments/distillation.py: a tiny small base, each arm from it, the teacher, one table."""
    monkeypatch.setenv("TINYZERO_HOME", str(tmp_path / "home"))
    bench = load("experiments/distillation")
    from tinyzero.nano.build import find_base_model, load_config

    teacher = find_base_model(load_config(None))  # the shipped base model: a nano model that gets a few right
    pretrain = "--num_traces 64 --max_steps 2 --batch_size 8 --hidden_size 32 --intermediate_size 64 --num_layers 1 --warmup_steps 0"
    distill = ("--num_prompts 32 --num_samples 2 --max_completion_length 96 --max_steps 1 --per_device_train_batch_size 4 "
               "--sample_batch_size 64")
    argv = ["--teacher", str(teacher), "--seeds", "1", "--eval_seeds", "0", "1", "--n", "4", "--jobs", "2",
            "--out", str(tmp_path / "d"), "--pretrain_args", pretrain, "--train_args", TINY_TRAIN, "--distill_args", distill]
    record = bench.main(argv)
    arms = [r["arm"] for r in record["rows"]]
    assert arms == ["small base", "teacher", "small-grpo-g1", "small-sft-g1", "small-token-g1"]
    for r in record["rows"]:
        assert 0 <= r["accuracy"] <= 1
    assert record["rows"][3]["kept"] > 0  # sft trained on the teacher's correct samples
    assert "| small-sft-g1 |" in (tmp_path / "d" / "table.md").read_text()


def test_sampling_speed_at_a_tiny_size(capsys):
    """benchmarks/perf/sampling_speed.py: a row per method with its floor from tinyzero.roofline,
    and the profiler's table of one call (--ops)."""
    load("perf/sampling_speed").main(["--model", "random", "--prompts", "2", "--generations", "4", "--max_new", "8",
                                      "--repeats", "1", "--methods", "hf", "fast", "--ops", "3"])  # fmt: skip
    out = capsys.readouterr().out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("grpo ")}
    assert set(rows) == {"hf", "fast"}
    for cells in rows.values():  # shape, method, threads, seconds, tokens, tok/s, floor s, ratio, kv s
        tokens, ratio = int(cells[4]), float(cells[7])
        assert 0 < tokens <= 8 * 8 and 0 < ratio < float("inf")  # the floor is positive and finite
    assert "floor of the last run:" in out and "KV reads" in out
    assert "aten::" in out  # the profiler's table


def test_search_bound_is_the_mean_of_a_simulated_perfect_searcher(tmp_path):
    import random

    from tinyzero.nano.corpus import chains, check_line
    from tinyzero.stats import thinking_length

    bound = load("analysis/search_bound")
    # no chain reaches 1000: all 9 lines, joined by 8 newlines
    none = bound.perfect_search([3, 5, 4], 1000)
    assert none["hits"] == 0 and none["attempts"] == 9
    assert none["chars"] == sum(len(check_line(a, 1000)[0]) for a in chains([3, 5, 4])) + 8
    # the exact expectation against the searcher itself: shuffle, stop at the first hit, measure
    # the completion's thinking as the eval does
    rng = random.Random(0)
    for nums, target in [([3, 5, 4], 19), ([2, 2, 2], 8)]:  # one hit chain; two
        exact = bound.perfect_search(nums, target)
        assert exact["hits"] == (1 if target == 19 else 2)
        n, tried, chars = 20000, 0, 0
        for _ in range(n):
            order, lines = chains(nums), []
            rng.shuffle(order)
            for att in order:
                lines.append(check_line(att, target)[0])
                if att.value == target:
                    break
            tried += len(lines)
            chars += thinking_length("\n".join(lines) + f"</think>\n<answer>{order[0].expr}</answer>")
        assert abs(tried / n - float(exact["attempts"])) < 0.06
        assert abs(chars / n - float(exact["chars"])) < 1.5
    assert bound.perfect_search([3, 5, 4], 19)["attempts"] == 5  # (9 + 1) / (1 + 1)
    assert bound.perfect_search([3, 5, 4], 1000, "all")["attempts"] == 27
    assert bound.perfect_search([3, 7, 8], 35)["hits"] == 0 and bound.perfect_search([3, 7, 8], 35, "all")["hits"] == 1
    # a grid's run against the bound; a file that is not a grid gets one line
    grid = {"rows": [{"pretrain_seed": 1, "grpo_seed": 42, "base_thinking": 60.0, "final_thinking": 150.0}]}
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    [row] = bound.grid_rows(grid, chars_bound=161.0)
    assert row["run"] == "p1-g42" and row["need"] == 180.0 and row["need_over_bound"] and not row["final_over_bound"]
    record = bound.main(["--grid", str(tmp_path / "grid.json")])
    assert 0.4 < record["bound"]["reachable"] < 0.7 and record["bound"]["problems"] == 500
    (tmp_path / "bad.json").write_text(json.dumps({"step": 0}))
    with pytest.raises(SystemExit, match="not a robustness.py grid.json"):
        bound.main(["--grid", str(tmp_path / "bad.json")])
