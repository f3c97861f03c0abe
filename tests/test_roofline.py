"""tinyzero.roofline: the FLOP and byte model against hand counts and torch's own FLOP counter;
the measured rates and the floor."""

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from tinyzero import roofline

# hidden 4, 2 heads of head_dim 2, 1 KV head (kv_dim 2), intermediate 8, 1 layer, vocab 10
TINY = Qwen2Config(vocab_size=10, hidden_size=4, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
                   num_key_value_heads=1, tie_word_embeddings=True)


def test_param_counts_by_hand_and_against_the_model():
    c = roofline.param_counts(TINY)
    # q 4x4, k 4x2, v 4x2, o 4x4 = 48; gate, up 4x8, down 8x4 = 96
    assert c["body_matmul"] == 48 + 96 == 144
    assert c["lm_head"] == 40
    # + biases q 4, k 2, v 2, two norms 8, final norm 4
    assert c["total"] == 144 + 8 + 8 + 40 + 4 == 204
    assert (c["head_dim"], c["kv_dim"]) == (2, 2)
    assert c["total"] == sum(p.numel() for p in Qwen2ForCausalLM(TINY).parameters())
    untied = Qwen2Config(**{**TINY.to_dict(), "tie_word_embeddings": False})
    assert roofline.param_counts(untied)["total"] == sum(p.numel() for p in Qwen2ForCausalLM(untied).parameters()) == 244


def test_sampling_flops_by_hand():
    # row 1: prompt 3, completion 2 -> 3 + 1 = 4 tokens run (the last sampled one is not)
    #   matmul 2*144*4 = 1152; attention 1 layer * 4 * 2 heads * 2 head_dim * (1+2+3+4 keys) = 160;
    #   lm head at 2 positions (last prompt token, first sampled) 2*40*2 = 160
    # row 2: prompt 2, completion 0 -> 2 tokens, matmul 576, attention 16 * 3 = 48, no lm head
    f = roofline.sampling_flops(TINY, [3, 2], [2, 0])
    assert f == {"tokens": 2, "matmul": 1152 + 576, "attention": 160 + 48, "lm_head": 160, "total": 1152 + 576 + 160 + 48 + 160}
    with pytest.raises(ValueError):
        roofline.sampling_flops(TINY, [3, 2], [2])


def test_forward_flops_against_torchs_flop_counter():
    """A real Qwen2 forward counted by torch: its linear layers are our matmul + lm head; eager
    attention computes the full seq x seq score matrix where the causal count is the triangle."""
    from torch.utils.flop_counter import FlopCounterMode

    config = Qwen2Config(**{**TINY.to_dict(), "attn_implementation": "eager"})
    model = Qwen2ForCausalLM(config).eval()
    batch, seq, keep = 2, 5, 3
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randint(0, 10, (batch, seq)), logits_to_keep=keep)
    counted = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    f = roofline.forward_flops(config, seq, batch=batch, logits=keep)
    assert counted["aten.addmm"] + counted["aten.mm"] == f["matmul"] + f["lm_head"]
    assert counted["aten.bmm"] * (seq * (seq + 1) // 2) == f["attention"] * seq * seq
    # a cached continuation: 2 tokens after 3 cached positions attend to 4 and 5 keys
    assert roofline.forward_flops(config, 2, past=3)["attention"] == 16 * (4 + 5)


def test_kv_and_decode_bytes_by_hand():
    # K and V * 1 layer * 1 KV head * head_dim 2 * 2 bytes = 8 per position
    assert roofline.kv_bytes_per_position(TINY, 2) == 8
    # completion 4 after prompt 3: decode steps at contexts 4, 5, 6 = 15 positions; completion 1: none
    assert roofline.kv_read_bytes(TINY, [3, 3], [4, 1], itemsize=2) == 8 * 15
    # weights read once per step of the longest row (3 steps)
    assert roofline.decode_bytes(TINY, [3, 3], [4, 1], kv_itemsize=2, weight_bytes=816) == 3 * 816 + 120
    assert roofline.decode_bytes(TINY, [3], [2], kv_itemsize=4) == 204 * 4 + 16 * 4


def test_floor_is_the_slower_of_arithmetic_and_memory():
    assert roofline.floor(1000, 10, 100.0, 10.0) == 10.0
    assert roofline.floor(100, 1000, 100.0, 10.0) == 100.0
    rates = roofline.Rates(matmul_flops_per_s=100.0, bandwidth_bytes_per_s=10.0)
    assert rates.floor(1000) == 10.0 and rates.floor(1000, 500) == 50.0


def test_sampling_floor_by_hand():
    # prompt 3, completion 4: 6 tokens run; linear FLOPs 2*144*6 + lm head 2*40*4 = 1728 + 320;
    # attention 16 * 21 keys = 336; 3 decode steps read the weights (204 x 4 bytes) and 15 KV
    # positions of 16 bytes
    rates = roofline.Rates(matmul_flops_per_s=100.0, bandwidth_bytes_per_s=10.0)
    f = roofline.sampling_floor(TINY, [3], [4], rates)
    assert (f["flops"], f["weight_bytes"], f["kv_bytes"]) == (1728 + 320 + 336, 3 * 816, 240)
    assert f["linear_s"] == max(2048 / 100, 3 * 816 / 10) == 244.8
    assert f["attention_s"] == max(336 / 100, 240 / 10) == 24.0
    assert f["s"] == f["linear_s"] + f["attention_s"]


def test_measured_rates_on_the_cpu():
    by_shape = {}
    rate = roofline.measure_matmul_rate(TINY, 8, repeats=1, by_shape=by_shape)
    assert set(by_shape) == {name for name, *_ in roofline.matmul_shapes(TINY, 8)}
    each = [s["flops_per_s"] for s in by_shape.values()]
    # the weighted rate lies within its shapes' rates (each shape at its own best thread count)
    assert 0 < rate <= max(each) * 1.0001
    threads = torch.get_num_threads()
    rates = roofline.measure(TINY, 8, repeats=1)
    assert rates.matmul_flops_per_s > 0 and rates.bandwidth_bytes_per_s > 0
    assert (rates.device, rates.dtype) == ("cpu", "float32")
    assert torch.get_num_threads() == threads  # restored after trying 1 and all cores
    assert 1 in roofline.thread_counts()
