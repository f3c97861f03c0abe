"""``python -m tinyzero.distill`` at a tiny size (offline, seconds): both methods train the
student end to end, rejection sampling keeps exactly what the grader marks correct, bad input
is one line, and the recipes parse.

The teacher is a tiny nano model that memorised the solutions of 8 problems (most of its
samples at temperature 1.0 are right, some are not); the student is a tinier nano base model
built through the real path, ``ensure_base_model`` on a shrunken copy of
recipes/nano-small-pretrain.yaml, into a temporary cache.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import fit_tiny_nano
from safetensors.torch import load_file

from tinyzero import cli, distill
from tinyzero import eval as eval_cmd
from tinyzero.generation import Generation
from tinyzero.runfiles import METRICS_FILE, read_jsonl
from tinyzero.tasks import TASKS, countdown

REPO = Path(__file__).resolve().parent.parent
TASK = TASKS["countdown"]
SIZES = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size")


def make_teacher(path: Path, rows: list[dict], steps: int = 100, seed: int = 0) -> Path:
    """A tiny nano model taught the solutions of ``rows`` (1-2 s): at temperature 1.0 about
    three samples in four are correct, so rejection sampling has something to keep and to drop."""
    from tinyzero.nano.tokenizer import EOS

    docs = []
    for r in rows:
        expr = r["solution"].replace(" ", "")
        docs.append(f"{TASK.prompt(r, 'nano')}{expr} yes</think>\n<answer>{expr}</answer>{EOS}")
    return fit_tiny_nano(path, docs, steps, seed)


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "problems.jsonl"
    rows = countdown.generate(8, num_count=3, num_range=(1, 9), target_range=(1, 30), seed=0)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, problems) -> Path:
    rows = [json.loads(line) for line in problems.read_text().splitlines()]
    return make_teacher(tmp_path_factory.mktemp("teacher"), rows)


@pytest.fixture(scope="module")
def student_recipe(tmp_path_factory) -> Path:
    """recipes/nano-small-pretrain.yaml shrunk to a few seconds of pretraining."""
    recipe = yaml.safe_load((REPO / "recipes" / "nano-small-pretrain.yaml").read_text())
    recipe.update(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=32,
                  num_traces=64, max_steps=2, batch_size=8, warmup_steps=0)
    path = tmp_path_factory.mktemp("recipe") / "student.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture
def home(tmp_path_factory, monkeypatch) -> Path:
    """One base-model cache for the module's tests: the student is pretrained once."""
    root = tmp_path_factory.getbasetemp() / "distill-home"
    monkeypatch.setenv("TINYZERO_HOME", str(root))
    monkeypatch.delenv("TINYZERO_DEBUG", raising=False)
    return root


def argv(teacher: Path, problems: Path, recipe: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--teacher_model", str(teacher), "--student_pretrain_config", str(recipe), "--dataset_name", str(problems),
        "--num_samples", "4", "--temperature", "1.0", "--max_completion_length", "24", "--sample_batch_size", "32",
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--learning_rate", "1e-2", "--warmup_steps", "0",
        "--logging_steps", "1", "--output_dir", str(out), *extra,
    ]


def assert_student_trained(summary: dict, out: Path, method: str) -> None:
    before = load_file(Path(summary["student"]) / "model.safetensors")  # the base model it started from
    after = load_file(out / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before), f"{method}: the student's weights did not change"
    written = json.loads((out / "summary.json").read_text())
    assert written["method"] == method and written["steps"] == 2 == summary["steps"]
    assert 0 < written["student_parameters"] < written["teacher_parameters"]
    assert written["student_parameters"] == sum(v.numel() for k, v in after.items() if k != "lm_head.weight")  # tied
    rows = read_jsonl(out / METRICS_FILE)
    assert [r["step"] for r in rows] == [1, 2] and all(math.isfinite(r["loss"]) for r in rows), rows


def test_sft_keeps_only_correct_teacher_samples_and_trains_the_student(teacher, problems, student_recipe, home, tmp_path):
    out = tmp_path / "sft"
    summary = distill.main(*distill.parse_args(argv(teacher, problems, student_recipe, out)))
    assert_student_trained(summary, out, "sft")
    assert Path(summary["student"]).parent == home / "nano-base"  # built by ensure_base_model from the recipe

    data = read_jsonl(out / distill.DATA_FILE)
    assert summary["sampled"] == 8 * 4 and summary["problems"] == 8
    assert 0 < summary["kept"] == len(data) < summary["sampled"], "the teacher should be right often, not always"
    for row in data:  # every kept completion is one the grader marks correct, for its own problem
        assert TASK.grade(row["completion"], row).correct, row
        assert row["prompt"] == TASK.prompt(row, "nano") and row["completion"].endswith("</answer>")

    # The folder is a model tinyzero.eval can evaluate (nano tokenizer and marker included).
    figures = eval_cmd.main(eval_cmd.parse_args([
        "--model", str(out), "--dataset", str(problems), "--n", "2", "--k", "1", "--max_completion_length", "8",
    ]))
    assert figures["problems"] == 2 and figures["template"] == "nano"


def test_token_method_trains_the_student_on_policy_against_the_teacher(teacher, problems, student_recipe, home, tmp_path):
    out = tmp_path / "token"
    args, config = distill.parse_args(argv(teacher, problems, student_recipe, out, "--method", "token", "--beta", "0.5"))
    assert type(config).__name__ == "DistillationConfig" and config.beta == 0.5
    summary = distill.main(args, config)
    assert_student_trained(summary, out, "token")
    rows = read_jsonl(out / METRICS_FILE)
    assert all(r["completions/mean_length"] > 0 for r in rows)  # the student sampled completions itself
    assert "kept" not in summary and not (out / distill.DATA_FILE).exists()  # no grader, no teacher samples


def _generation(text: str, truncated: bool = False) -> Generation:
    return Generation(text, [], truncated)


def test_rejection_sampling_keeps_exactly_what_the_grader_marks_correct():
    nano_row = {"nums": [3, 5, 4], "target": 19, "prompt": "Make 19 from 3 5 4.\n<think>"}
    chat_row = {"nums": [2, 8, 8], "target": 8, "prompt": [{"role": "user", "content": "Make 8 from 2 8 8."}]}
    good = "3*5=15 15+4=19 vs 19 yes</think>\n<answer>(3*5)+4</answer>"
    also_good = "<answer>4+(5*3)</answer>"
    bad = [
        "3+5=8 8+4=12 vs 19 low</think>\n<answer>3+5+4</answer>",  # wrong value
        "<answer>4*4+3</answer>",  # 19, but 4 twice and no 5
        "3*5=15 15+4=19 vs 19 yes",  # no answer block
        "<answer>__import__('os').system('true')</answer>",  # not arithmetic: never evaluated
    ]
    groups = [
        [_generation(good), *map(_generation, bad), _generation(good, truncated=True), _generation(also_good)],
        [
            _generation("<answer>(8-8)+2</answer>"),  # 2, not 8
            _generation("<answer>8</answer>"),  # 8, but the 2 and an 8 are left unused
            _generation("<answer>(8+8)/2</answer>"),  # 8, each number once
        ],
    ]
    kept, counts = distill.keep_correct(TASK, [nano_row, chat_row], groups)
    assert [k["completion"] for k in kept[:2]] == [good, also_good]
    assert all(k["prompt"] == nano_row["prompt"] and k["nums"] == [3, 5, 4] and k["target"] == 19 for k in kept[:2])
    assert kept[2]["prompt"] == chat_row["prompt"]  # a chat prompt gets TRL's conversational completion
    assert kept[2]["completion"] == [{"role": "assistant", "content": "<answer>(8+8)/2</answer>"}]
    assert counts == {"problems": 2, "sampled": 10, "correct": 4, "truncated_correct": 1, "kept": 3, "problems_kept": 2}


def _one_line_error(args: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        cli.run(distill.main, *distill.parse_args(args))
    message = str(e.value.code)
    assert "\n" not in message and "error" in message and "Traceback" not in message, message
    return message


def test_bad_teachers_are_one_line_errors_before_anything_is_built(teacher, problems, student_recipe, home, tmp_path):
    base = argv(teacher, problems, student_recipe, tmp_path / "out")
    missing = _one_line_error([*base, "--teacher_model", str(tmp_path / "no-such-run")])
    assert "teacher_model" in missing and "no-such-run" in missing
    assert "--teacher_model is required" in _one_line_error([*base, "--teacher_model", ""])

    not_nano = tmp_path / "plain-qwen2"  # the same model, without the nano tokenizer's marker
    shutil.copytree(teacher, not_nano)
    (not_nano / "tinyzero_nano.json").unlink()
    message = _one_line_error([*base, "--teacher_model", str(not_nano)])
    assert "not a nano model folder" in message and "plain-qwen2" in message
    assert not (tmp_path / "out").exists()


def test_a_teacher_with_no_correct_completion_stops_before_the_student_is_built(problems, student_recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYZERO_HOME", str(tmp_path / "home"))  # an empty cache: the student would need pretraining
    monkeypatch.delenv("TINYZERO_DEBUG", raising=False)
    never_right = make_teacher(tmp_path / "random", [], steps=0)  # random weights: no answer block in 24 tokens
    out = tmp_path / "out"
    message = _one_line_error(argv(never_right, problems, student_recipe, out))
    assert "no correct completions kept" in message and "32" in message  # 8 prompts x 4 samples, all wrong
    assert read_jsonl(out / distill.DATA_FILE) == [] and (out / distill.DATA_FILE).is_file()
    assert not (out / "model.safetensors").exists()
    assert not (tmp_path / "home" / "nano-base").exists(), "the student was pretrained for nothing"


@pytest.mark.parametrize("method", distill.METHODS)
def test_the_recipe_parses_for_both_methods_with_every_key_known(method):
    from trl import DistillationConfig

    args, config = distill.parse_args(["--method", method])  # the parser rejects unknown keys too
    known = {f.name for cls in (distill.DistillArguments, type(config)) for f in dataclasses.fields(cls)}
    keys = set(yaml.safe_load(distill.DEFAULT_RECIPE.read_text()))
    assert keys <= known, f"unknown keys for {method}: {sorted(keys - known)}"
    assert isinstance(config, DistillationConfig if method == "token" else distill.SFTDistillConfig)
    assert args.method == method and args.student_model == "nano" and args.dataset_train_split == "train"
    assert args.student_pretrain_config == "recipes/nano-small-pretrain.yaml"
    assert config.temperature == 0.6 and config.max_completion_length == 256  # the GRPO run's sampling
    assert args.sampling_workers == 2 and distill.parse_args(["--method", method, "--sampler", "hf"])[0].sampling_workers == 1
    assert config.use_cpu and not config.bf16 and not config.activation_checkpointing and config.report_to == []


def test_bad_flags_are_one_line(capsys):
    for bad, named in ((["--method", "kd"], "--method"), (["--beta", "0.5"], "--beta"), (["--num_samples", "0"], "--num_samples"),
                        (["--sampler", "hf", "--sampling_workers", "2"], "needs a fastgen sampler")):
        with pytest.raises(SystemExit) as e:
            distill.parse_args(bad)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and named in err, err  # --beta is token's: an error for sft
    with pytest.raises(SystemExit) as e:
        distill.parse_args(["--method", "token", "--help"])
    assert e.value.code == 0 and "--beta" in capsys.readouterr().out


def test_the_student_recipe_is_the_base_recipe_at_a_quarter_of_the_parameters():
    from transformers import Qwen2ForCausalLM

    from tinyzero.nano import build
    from tinyzero.nano.tokenizer import build_tokenizer

    base = yaml.safe_load((REPO / "recipes" / "nano-pretrain.yaml").read_text())
    small = yaml.safe_load((REPO / "recipes" / "nano-small-pretrain.yaml").read_text())
    assert base.keys() == small.keys()
    assert {k: v for k, v in small.items() if k not in SIZES} == {k: v for k, v in base.items() if k not in SIZES}
    vocab = len(build_tokenizer())

    def parameters(recipe: str) -> int:
        cfg = build.load_config(REPO / "recipes" / recipe)  # every key known to PretrainConfig
        with torch.device("meta"):
            model = Qwen2ForCausalLM(build.model_config(vocab, *(getattr(cfg, k) for k in SIZES)))
        return sum(p.numel() for p in model.parameters())

    ratio = parameters("nano-small-pretrain.yaml") / parameters("nano-pretrain.yaml")
    assert 0.2 <= ratio <= 0.35, ratio
