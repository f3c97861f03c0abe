"""The speed floor of a Qwen2 model: one FLOP and byte model, one matmul rate, one bandwidth.

Every benchmark that puts a time beside a floor takes all three from here, so two floors of
the same work can only differ by the work::

    from tinyzero import roofline
    rates = roofline.measure(model.config, rows=256)               # this device, now
    seconds = rates.floor(flops, nbytes)                           # max(flops / rate, bytes / bandwidth)
    roofline.sampling_floor(model.config, prompt_lens, completion_lens, rates)["s"]   # a sampling call's

The model (any object with ``transformers.Qwen2Config``'s attribute names):

- FLOPs per token: 2 x the matmul weights of the layers (q/k/v/o, gate/up/down), plus 2 x
  hidden x vocab for the lm head at each position whose logits are used, plus attention's
  q.k and p.v, 4 x heads x head_dim per key in the token's context, per layer. Biases, norms,
  rotary and the softmax are elementwise: memory traffic, not matmul arithmetic, so not here.
- Sampling (prefill, then one decode step per sampled token but the last) runs a row's
  prompt_len + completion_len - 1 tokens through the model; a causal forward and a KV-cached
  decode do the same arithmetic. The lm head runs at the last prompt position and at each
  generated token but the last: completion_len positions.
- Bytes of a decode loop: each step reads the weights once (shared by the batch's rows) and
  every live row's cached keys and values for its context; step k of a row with prompt p
  reads p + k positions. The prefill is compute-bound and its bytes are not counted.
- A sampling call's floor (``sampling_floor``) is the floor of its linear layers (their FLOPs,
  the weights read once per step) plus the floor of its attention (its FLOPs, the KV cache
  read): the two run one after the other in every layer, and at sampling's shapes the first is
  bound by arithmetic and the second by memory, so one ``floor`` over the summed work would
  let the attention's reads hide under the matmuls' arithmetic, which they cannot.

The rates (``measure``):

- matmul rate: ``F.linear`` (the op ``nn.Linear`` runs, weight stored out x in) at the model's
  own shapes and row count, weighted by how often each shape runs in one forward; each shape
  timed as the median of ``repeats`` samples, so that a burst of load from another process
  moves one sample, not the rate. On a CPU it is the best of 1 thread and all the process's
  cores: the two older measures of this rate (sampling_speed.py at its --threads, 1 by
  default; speed.py at the best of 1 and 2 threads) were 2x apart on the 2-core machine, and
  measured side by side the gap was the thread count alone (layout, a distinct weight per
  layer and the row count moved the rate by a few percent). A floor is the least time the
  machine needs, so it takes the machine's best: all cores.
- bandwidth: bytes read + bytes written per second of a copy too large for the caches (64 MiB
  on a CPU, 1 GiB on a GPU; the STREAM "copy" convention), median of ``repeats``, best of the
  same thread counts. A read-only stream (the KV cache) is counted at this rate, so a floor
  never charges a read twice.

On a GPU the matmuls run in bfloat16 and threads do not matter; the device synchronises
before each clock read.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def param_counts(config) -> dict:
    """Parameters of a Qwen2 model (as ``model.parameters()`` counts them).

    ``body_matmul``: the layers' matmul weights (q/k/v/o, gate/up/down); ``lm_head``: hidden x
    vocab (the tied embedding, or the separate head); ``total``: everything, biases and norms
    included, embeddings once when tied; ``head_dim``, ``kv_dim``: attention's sizes.
    """
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    hd = _head_dim(config)
    q, kv = config.num_attention_heads * hd, config.num_key_value_heads * hd
    attn = h * q + 2 * h * kv + q * h
    mlp = 3 * h * inter
    per_layer = attn + mlp + q + 2 * kv + 2 * h  # + q/k/v biases, two norms
    embed = config.vocab_size * h
    tied = getattr(config, "tie_word_embeddings", True)
    return {
        "body_matmul": layers * (attn + mlp),
        "lm_head": embed,
        "total": layers * per_layer + h + embed * (1 if tied else 2),  # + the final norm
        "head_dim": hd,
        "kv_dim": kv,
    }


def forward_flops(config, seq_len: int, *, batch: int = 1, logits: int | None = None, past: int = 0) -> dict:
    """FLOPs of one forward of ``batch`` sequences of ``seq_len`` new tokens each, after ``past``
    cached positions, with the lm head at ``logits`` positions per sequence (all by default;
    TRL's scoring forward keeps the completion's only). Parts: matmul, attention, lm_head, total."""
    c = param_counts(config)
    logits = seq_len if logits is None else logits
    matmul = 2 * c["body_matmul"] * seq_len
    keys = seq_len * past + seq_len * (seq_len + 1) // 2  # token i (from 1) attends to past + i keys
    attention = config.num_hidden_layers * 4 * config.num_attention_heads * c["head_dim"] * keys
    lm_head = 2 * c["lm_head"] * logits
    parts = {"matmul": matmul * batch, "attention": attention * batch, "lm_head": lm_head * batch}
    return {**parts, "total": sum(parts.values())}


def sampling_flops(config, prompt_lens: Sequence[int], completion_lens: Sequence[int]) -> dict:
    """FLOPs of sampling these completions after these prompts (prefill + decode), one row
    per pair. Parts as ``forward_flops``, plus ``tokens``: the completion tokens sampled."""
    out = {"tokens": 0, "matmul": 0, "attention": 0, "lm_head": 0, "total": 0}
    for p, n in zip(prompt_lens, completion_lens, strict=True):
        f = forward_flops(config, p + max(n - 1, 0), logits=max(n, 0))  # the last sampled token is not run
        for key in ("matmul", "attention", "lm_head", "total"):
            out[key] += f[key]
        out["tokens"] += n
    return out


def kv_bytes_per_position(config, itemsize: int = 4) -> int:
    """Bytes of K and V of one position of one sequence, all layers."""
    return 2 * config.num_hidden_layers * config.num_key_value_heads * _head_dim(config) * itemsize


def kv_read_bytes(config, prompt_lens: Sequence[int], completion_lens: Sequence[int], itemsize: int = 4) -> int:
    """Bytes of cached K and V that the decode steps read: step k of a row reads p + k positions."""
    positions = 0
    for p, n in zip(prompt_lens, completion_lens, strict=True):
        steps = max(n - 1, 0)
        positions += steps * p + steps * (steps + 1) // 2
    return kv_bytes_per_position(config, itemsize) * positions


def decode_bytes(config, prompt_lens: Sequence[int], completion_lens: Sequence[int], *, kv_itemsize: int = 4,
                 weight_bytes: int | None = None) -> int:
    """Bytes one sampling call's decode loop reads: the weights once per step (``weight_bytes``;
    default all parameters at ``kv_itemsize``) for the longest row's steps, plus the KV reads."""
    if weight_bytes is None:
        weight_bytes = param_counts(config)["total"] * kv_itemsize
    steps = max((max(n - 1, 0) for n in completion_lens), default=0)
    return steps * weight_bytes + kv_read_bytes(config, prompt_lens, completion_lens, kv_itemsize)


def floor(flops: float, nbytes: float, matmul_flops_per_s: float, bandwidth_bytes_per_s: float) -> float:
    """Seconds the work needs at least: the arithmetic or the memory traffic, whichever is longer."""
    return max(flops / matmul_flops_per_s, nbytes / bandwidth_bytes_per_s)


@dataclass(frozen=True)
class Rates:
    """What ``measure`` found on one device: FLOP/s of the model's matmuls, bytes/s of a copy."""

    matmul_flops_per_s: float
    bandwidth_bytes_per_s: float
    device: str = "cpu"
    dtype: str = "float32"

    def floor(self, flops: float, nbytes: float = 0.0) -> float:
        return floor(flops, nbytes, self.matmul_flops_per_s, self.bandwidth_bytes_per_s)


def sampling_floor(config, prompt_lens: Sequence[int], completion_lens: Sequence[int], rates: Rates, *,
                   kv_itemsize: int = 4, weight_bytes: int | None = None) -> dict:
    """Floor seconds of one sampling call (see the module docstring): ``linear_s`` + ``attention_s``
    = ``s``, with the work they count (``flops``, ``tokens``, ``weight_bytes``, ``kv_bytes``)."""
    f = sampling_flops(config, prompt_lens, completion_lens)
    if weight_bytes is None:
        weight_bytes = param_counts(config)["total"] * kv_itemsize
    steps = max((max(n - 1, 0) for n in completion_lens), default=0)
    kv = kv_read_bytes(config, prompt_lens, completion_lens, kv_itemsize)
    linear = rates.floor(f["matmul"] + f["lm_head"], steps * weight_bytes)
    attention = rates.floor(f["attention"], kv)
    return {"flops": f["total"], "tokens": f["tokens"], "weight_bytes": steps * weight_bytes, "kv_bytes": kv,
            "linear_s": linear, "attention_s": attention, "s": linear + attention}


# --- measuring the rates ------------------------------------------------------------------


def matmul_shapes(config, rows: int) -> list[tuple[str, int, int, int, int]]:
    """(name, M, K, N, times per forward) of the model's matmuls at ``rows`` tokens (F.linear:
    M x K input, N x K weight)."""
    c = param_counts(config)
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    q = config.num_attention_heads * c["head_dim"]
    return [
        ("q_proj", rows, h, q, layers),
        ("k/v_proj", rows, h, c["kv_dim"], 2 * layers),
        ("o_proj", rows, q, h, layers),
        ("gate/up_proj", rows, h, i, 2 * layers),
        ("down_proj", rows, i, h, layers),
        ("lm_head", rows, h, config.vocab_size, 1),
    ]


def _device(device):
    return torch.device(device)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, device, repeats: int, sample_s: float = 0.02) -> float:
    """Median seconds per call of fn over ``repeats`` samples of enough calls to last ``sample_s``."""
    fn()  # warm-up: allocation, kernel selection
    _sync(device)
    calls, start = 0, time.perf_counter()
    while calls < 1 or time.perf_counter() - start < sample_s / 4:
        fn()
        calls += 1
        _sync(device)
    per_call = (time.perf_counter() - start) / calls
    n = max(1, int(sample_s / max(per_call, 1e-9)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        _sync(device)
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def thread_counts() -> tuple[int, ...]:
    """The torch thread counts a CPU rate is the best of: 1 and every core this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return tuple(sorted({1, cores}))


def _best_over_threads(device, measure) -> float:
    """``measure()`` on a GPU; on a CPU the best of ``thread_counts()`` (the count is restored)."""
    if device.type != "cpu":
        return measure()
    before = torch.get_num_threads()
    try:
        best = 0.0
        for threads in thread_counts():
            torch.set_num_threads(threads)
            best = max(best, measure())
        return best
    finally:
        torch.set_num_threads(before)


def _default_dtype(device):
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def measure_matmul_rate(config, rows: int, *, device="cpu", dtype=None, repeats: int = 5, by_shape: dict | None = None) -> float:
    """FLOP/s of the model's matmuls at ``rows`` tokens, weighted as in one forward (see the
    module docstring). ``by_shape``, when given, receives each shape's own rate (best thread count)."""
    device = _device(device)
    dtype = dtype or _default_dtype(device)
    shapes = matmul_shapes(config, rows)
    mats = {name: (torch.randn(m, k, device=device, dtype=dtype), torch.randn(n, k, device=device, dtype=dtype))
            for name, m, k, n, _ in shapes}
    found = {}

    def one_pass() -> float:
        total_flops = total_s = 0.0
        for name, m, k, n, times in shapes:
            x, w = mats[name]
            seconds = _median_seconds(lambda x=x, w=w: F.linear(x, w), device, repeats)
            flops = 2.0 * m * k * n
            if flops / seconds > found.get(name, {}).get("flops_per_s", 0.0):
                found[name] = {"shape": [m, k, n], "flops_per_s": flops / seconds}
            total_flops += flops * times
            total_s += seconds * times
        return total_flops / total_s

    rate = _best_over_threads(device, one_pass)
    if by_shape is not None:
        by_shape.update(found)
    mats.clear()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rate


def measure_bandwidth(*, device="cpu", nbytes: int | None = None, repeats: int = 5) -> float:
    """Bytes read + written per second of a device-to-device copy of ``nbytes`` (64 MiB on a CPU,
    1 GiB on a GPU by default)."""
    device = _device(device)
    nbytes = nbytes or (2**30 if device.type == "cuda" else 64 * 2**20)
    buffers = [torch.ones(nbytes, dtype=torch.uint8, device=device)]
    buffers.append(torch.empty_like(buffers[0]))
    rate = _best_over_threads(device, lambda: 2.0 * nbytes / _median_seconds(lambda: buffers[1].copy_(buffers[0]), device, repeats))
    buffers.clear()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rate


def measure(config, rows: int, *, device="cpu", dtype=None, repeats: int = 5) -> Rates:
    """Both rates of this device for this model's matmuls at ``rows`` tokens."""
    device = _device(device)
    dtype = dtype or _default_dtype(device)
    return Rates(
        matmul_flops_per_s=measure_matmul_rate(config, rows, device=device, dtype=dtype, repeats=repeats),
        bandwidth_bytes_per_s=measure_bandwidth(device=device, repeats=repeats),
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
    )
