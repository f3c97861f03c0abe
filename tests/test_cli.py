"""Every command parses its flags the same way: --help exits 0, a bad flag or value is one line.

Run: pytest tests/test_cli.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinyzero import eval as eval_cmd
from tinyzero import plot, pretrain, sample, train

REPO = Path(__file__).resolve().parent.parent


PARSERS = {
    "train": train.parse_args,
    "pretrain": pretrain.parse_args,
    "eval": eval_cmd.parse_args,
    "sample": sample.parse_args,
    "plot": plot.main,
}


@pytest.mark.parametrize("name", PARSERS)
def test_help_exits_zero(name, capsys):
    with pytest.raises(SystemExit) as e:
        PARSERS[name](["--help"])
    assert e.value.code == 0
    assert "--" in capsys.readouterr().out  # it listed options


@pytest.mark.parametrize("name", PARSERS)
def test_bad_flag_is_one_line_naming_it(name, capsys):
    with pytest.raises(SystemExit) as e:
        PARSERS[name](["runs/x", "--bogus_flag", "1"] if name == "plot" else ["--bogus_flag", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--bogus_flag" in err and "error" in err, err


@pytest.mark.parametrize(
    "name, argv, named",
    [
        ("train", ["--max_steps", "many"], "--max_steps"),
        ("train", ["--trainer", "ppo"], "--trainer 'ppo'"),
        ("train", ["--update_buckets", "0"], "update_buckets must be >= 1"),
        ("train", ["--check_penalty", "2"], "--check_penalty 2.0"),
        ("train", ["--check_penalty", "0.5", "--reward", "random"], "reward is 'random'"),
        ("train", ["--sampler", "hf", "--sampling_workers", "2"], "--sampling_workers 2 needs a fastgen sampler"),
        ("train", ["--sampling_workers", "0"], "--sampling_workers 0"),
        ("eval", ["--sampling_workers", "2", "--sampler", "hf"], "--sampling_workers 2 needs a fastgen sampler"),
        ("pretrain", ["--seed", "x"], "--seed"),
        ("eval", ["--k", "0"], "--k"),
        ("sample", ["--nums", "3", "5"], "--target"),
        ("plot", ["runs/a", "runs/b"], "--compare"),
    ],
)
def test_bad_value_is_one_line_naming_it(name, argv, named, capsys):
    with pytest.raises(SystemExit) as e:
        PARSERS[name](argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and named in err, err


def test_bad_recipe_key_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "recipes" / "nano.yaml").read_text() + "\nbogus_key: 3\n")
    with pytest.raises(SystemExit):
        train.parse_args(["--config", str(bad)])
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bogus_key" in err, err


def _run(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TINYZERO_DEBUG", None)
    return subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_missing_model_is_one_line_not_a_traceback():
    out = _run("-m", "tinyzero.eval", "--model", "runs/no-such-run", "--n", "1", "--k", "1")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "runs/no-such-run" in out.stderr, out.stderr


def test_prepare_script_bad_dataset_is_one_line():
    out = _run("data/prepare.py", "--check", "no_such_data")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "no_such_data" in out.stderr


def test_sampling_workers_defaults():
    """The recipe splits sampling over 2 workers; train, eval and distill default to 2 for fastgen
    samplers and 1 for hf (which has no workers), so --sampler hf alone is not an error."""
    assert train.parse_args([])[0].sampling_workers == 2
    assert train.parse_args(["--sampler", "hf"])[0].sampling_workers == 1
    assert train.parse_args(["--sampling_workers", "3"])[0].sampling_workers == 3
    assert eval_cmd.parse_args([]).sampling_workers == 2
    assert eval_cmd.parse_args(["--sampler", "hf"]).sampling_workers == 1
    assert eval_cmd.parse_args(["--sampling_workers", "3"]).sampling_workers == 3
