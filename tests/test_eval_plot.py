"""Tests of sampling, pass@k, the eval/sample commands, model loading and the plots."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tinyzero import eval as eval_cli
from tinyzero import plot, sample
from tinyzero.generation import generate, sampling_config
from tinyzero.models import load_model_and_tokenizer
from tinyzero.nano import tokenizer as nano
from tinyzero.stats import pass_at_k


def test_pass_at_k_known_values():
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the fraction correct
    assert pass_at_k(8, 0, 8) == 0.0
    assert pass_at_k(8, 1, 8) == 1.0
    assert pass_at_k(4, 3, 2) == 1.0  # fewer wrong samples than k: always a hit
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_pass_at_k_matches_brute_force():
    from itertools import combinations

    samples = [1, 0, 0, 1, 0, 0]  # 2 correct of 6
    for k in range(1, 7):
        subsets = list(combinations(samples, k))
        expected = sum(any(s) for s in subsets) / len(subsets)
        assert pass_at_k(6, 2, k) == pytest.approx(expected)


@pytest.fixture(scope="module")
def model_and_tokenizer(nano_model_dir):
    return load_model_and_tokenizer(str(nano_model_dir))


def test_batched_left_padded_generation_matches_one_by_one(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    config = sampling_config(model, tokenizer, max_new_tokens=12, temperature=0)  # greedy
    prompts = ["Make 7 from 1 2 4.\n<think>", "Make 100 from 25 4 1 9.\n<think>", "Make 3 from 1 2.\n<think>"]
    batched = [g[0].text for g in generate(model, tokenizer, prompts, config, batch_size=8)]
    single = [generate(model, tokenizer, [p], config)[0][0].text for p in prompts]
    assert batched == single


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    config = sampling_config(model, tokenizer, max_new_tokens=16, temperature=1.0)
    prompts = ["Make 7 from 1 2 4.\n<think>"]
    torch.manual_seed(123)
    a = generate(model, tokenizer, prompts, config, num_return_sequences=4, seed=5)
    after = torch.rand(3)
    torch.manual_seed(123)
    b = generate(model, tokenizer, prompts, config, num_return_sequences=4, seed=5)
    assert a == b and len(a) == 1 and len(a[0]) == 4
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after)
    for g in a[0]:
        assert g.truncated == (len(g.token_ids) == 16 and tokenizer.eos_token_id not in g.token_ids)
    assert model.training is False  # restored (the loaded model was in eval mode)


def test_missing_model_folder_is_named(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        load_model_and_tokenizer(missing)
    with pytest.raises(FileNotFoundError, match="missing-run"):
        load_model_and_tokenizer("./missing-run")
    # A Hub id stays a Hub id; offline (as in tests) it fails at once, naming the model.
    with pytest.raises(OSError, match="Qwen/NoSuchModel-tinyzero"):
        load_model_and_tokenizer("Qwen/NoSuchModel-tinyzero")


def _assert_drawn(png):
    """The PNG reads back as an image with curves on it: many non-white pixels, several colours."""
    import matplotlib.image as mpimg

    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300, image.shape
    rgb = image[..., :3]
    inked = (rgb < 0.9).any(axis=-1).mean()  # axes, ticks, text and curves
    colours = {tuple(c) for c in (rgb[::7, ::7].reshape(-1, 3) * 8).round().astype(int).tolist()}
    assert 0.01 < inked < 0.6, (png, inked)
    assert len(colours) > 8, (png, len(colours))  # not a blank or one-colour canvas


def test_plot_writes_pngs_and_samples_table(tiny_run, tmp_path):
    out, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    written = plot.plot_run(run)
    names = {p.name for p in written}
    assert names == {"accuracy.png", "thinking_length.png", "reward.png", "completion_length.png", "overview.png", "samples.md"}
    for p in written:
        if p.suffix == ".png":
            _assert_drawn(p)
    table = (run / "samples.md").read_text()
    assert "## Problem 0" in table and "| 0 |" in table and "| 4 |" in table


def test_plot_falls_back_to_trainer_state(tiny_run, tmp_path):
    out, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(out / "checkpoint-4", run / "checkpoint-4")
    rows = plot.load_history(run)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert (run / "plots" / "accuracy.png").exists() is False
    plot.main([str(run)])
    _assert_drawn(run / "plots" / "accuracy.png")


def test_compare_overlays_runs_and_names_bad_input(tiny_run, tmp_path):
    out, _ = tiny_run
    png = tmp_path / "cmp" / "both.png"
    plot.main(["--compare", str(out), str(out), "--out", str(png)])
    _assert_drawn(png)
    with pytest.raises(FileNotFoundError, match="no metrics in"):
        plot.compare_runs([out, tmp_path / "empty"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 runs but 1 labels"):
        plot.compare_runs([out, out], tmp_path / "x.png", labels=["a"])
    with pytest.raises(SystemExit):
        plot.main(["--compare", str(out), "--out"])


def test_eval_command_reports_pass_at_k(tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    report = tmp_path / "eval.json"
    args = eval_cli.parse_args(
        ["--model", str(out), "--n", "3", "--k", "2", "--max_completion_length", "16", "--output", str(report)]
    )
    summary = eval_cli.main(args)
    for key in ("accuracy", "pass@2", "thinking_length", "completion_length", "format_rate", "truncation_rate"):
        assert key in summary
    assert summary["problems"] == 3 and summary["template"] == "nano"
    assert 0 <= summary["accuracy"] <= summary["pass@2"] <= 1
    assert json.loads(report.read_text())["pass@2"] == summary["pass@2"]
    assert len(report.with_suffix(".samples.jsonl").read_text().splitlines()) == 6
    printed = capsys.readouterr().out
    assert "| accuracy |" in printed and json.loads(printed.strip().splitlines()[-1]) == summary


def test_eval_takes_the_task_from_the_data(tiny_run, capsys):
    out, _ = tiny_run  # a Countdown-trained model, evaluated on multiplication: graded as multiplication
    args = eval_cli.parse_args(["--model", str(out), "--dataset", "multiplication", "--n", "3", "--k", "1",
                                "--max_completion_length", "8", "--seeds", "0", "1"])
    summary = eval_cli.main(args)
    assert summary["task"] == "multiplication" and summary["seeds"] == [0, 1]
    assert {"accuracy_std", "accuracy_min", "accuracy_max"} <= set(summary)
    with pytest.raises(ValueError, match="holds multiplication problems, not countdown"):
        eval_cli.main(eval_cli.parse_args(["--model", str(out), "--dataset", "multiplication", "--task", "countdown"]))


def test_mean_over_seeds():
    got = eval_cli.mean_over_seeds([{"problems": 5, "accuracy": 0.2}, {"problems": 5, "accuracy": 0.4}])
    assert got["problems"] == 5 and got["accuracy"] == pytest.approx(0.3)
    assert got["accuracy_min"] == 0.2 and got["accuracy_max"] == 0.4
    assert got["accuracy_std"] == pytest.approx(0.1414, abs=1e-3)


def test_sample_command(tiny_run, capsys):
    out, _ = tiny_run
    texts = sample.main(sample.parse_args(["--model", str(out), "--nums", "3", "5", "4", "--target", "23",
                                           "--n", "2", "--max_completion_length", "12"]))
    assert len(texts) == 2
    assert "Make 23 from 3 5 4." in capsys.readouterr().out
    assert len(sample.main(sample.parse_args(["--model", str(out), "--index", "2", "--n", "1",
                                              "--max_completion_length", "8"]))) == 1


def test_nano_name_uses_the_cached_base_model(nano_model_dir, monkeypatch):
    import tinyzero.nano.build

    calls = []
    monkeypatch.setattr(tinyzero.nano.build, "ensure_base_model", lambda cfg=None: calls.append(cfg) or nano_model_dir)
    model, tokenizer = load_model_and_tokenizer("nano", pretrain_config="my.yaml")
    assert calls == ["my.yaml"] and len(tokenizer) == len(nano.build_tokenizer())  # not Qwen2's 151k
