"""A lean sampler for small Qwen2 models on a CPU: what ``model.generate`` returns, faster.

``generate(model, input_ids, attention_mask, generation_config)`` returns what
``model.generate(input_ids=..., attention_mask=..., generation_config=...)`` returns: the
sequences tensor (prompt + completion, pad after eos, width = prompt + longest completion),
sampled from the same distribution with HF's temperature, top-k and top-p, in HF's order.

What it promises:

- the same greedy tokens as HF, and under ``exact_rng=True`` the same random stream as HF's
  ``torch.multinomial`` (so HF's sampled tokens wherever the logits agree to the bit);
  otherwise one uniform per row and step, inverse CDF: the same distribution, not the same draw;
- the same tokens for any number of ``workers`` (a row's result never depends on its neighbours);
- anything it does not cover (beam search, repetition penalty, other logits processors, a model
  that is not a plain Qwen2, sliding windows, rope scaling, a non-CPU device unless allowed,
  extra generate kwargs) goes to the model's own ``generate``: ``supported`` says why.

How: the Qwen2 forward written out on the model's own weights (fused q/k/v and gate/up), a
pre-allocated KV cache written in place, the prefill once per distinct prompt (GRPO repeats
each prompt), logits only for the last position, finished rows dropped from the batch, and the
decode step's rows split over fastgen's own threads, which meet once per step. Its speed and
the measurements behind each choice: benchmarks/results/sampling_speed.md.

``sampler(name, workers)`` is a recipe's ``sampler`` key as a function; ``tinyzero.trainer``
uses it for TRL's sampling and the held-out eval, ``tinyzero.eval`` and ``tinyzero.distill`` too.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

__all__ = ["SAMPLERS", "SAMPLER_OPTIONS", "check_sampler", "check_workers", "generate", "sampler", "supported", "workers_for"]

# What a recipe's or a command's ``sampler`` key may name: HF's model.generate, fastgen with its
# own random stream, or fastgen drawing HF's random stream (HF's tokens).
SAMPLERS = ("hf", "fastgen", "fastgen_exact")


def check_sampler(name: str) -> None:
    if name not in SAMPLERS:
        raise ValueError(f"--sampler {name!r}: choose from {list(SAMPLERS)}")


# What each sampler passes to ``generate``. fastgen attends with "bmm" (its fastest on a CPU);
# fastgen_exact keeps HF's SDPA, so that its logits, and with them its tokens, are HF's.
SAMPLER_OPTIONS = {"fastgen": {"attn": "bmm"}, "fastgen_exact": {"exact_rng": True, "attn": "sdpa"}}


def check_workers(name: str, workers) -> None:
    """A command's ``sampling_workers`` for its sampler ``name`` (see ``generate``'s ``workers``)."""
    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
        raise ValueError(f"--sampling_workers {workers!r}: a whole number of threads, at least 1")
    if name == "hf" and workers > 1:
        raise ValueError(f"--sampling_workers {workers} needs a fastgen sampler: --sampler hf samples with model.generate")


def workers_for(name: str, workers: int | None) -> int:
    """A command's ``sampling_workers``, checked; None: 2 for the fastgen samplers (the recipe's
    setting, benchmarks/results/sampling_speed.md), 1 for hf, which has no workers."""
    if workers is None:
        workers = 1 if name == "hf" else 2
    check_workers(name, workers)
    return workers


def sampler(name: str, workers: int = 1):
    """The sampler ``name`` as a function ``(model, input_ids, attention_mask, generation_config,
    **kwargs) -> sequences`` (what ``model.generate`` returns), its decode step split over
    ``workers`` threads (the same tokens for any number); None for ``hf`` (``model.generate``
    itself). Calls with extra generate kwargs go to ``model.generate``."""
    check_sampler(name)
    check_workers(name, workers)
    if name == "hf":
        return None
    options = {**SAMPLER_OPTIONS[name], "workers": workers}

    def sample(model, input_ids, attention_mask=None, generation_config=None, **kwargs):
        if kwargs:
            return model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config, **kwargs)
        return generate(model, input_ids, attention_mask, generation_config, **options)

    return sample


# GenerationConfig fields that change what generate does, with the values meaning "off". Any
# other value makes `supported` refuse (and `generate` fall back to HF).
_OFF_IF_NONE = ("penalty_alpha", "bad_words_ids", "force_words_ids", "top_h", "suppress_tokens", "begin_suppress_tokens",
                "sequence_bias", "forced_bos_token_id", "forced_eos_token_id", "exponential_decay_length_penalty",
                "watermarking_config", "stop_strings", "max_time", "prompt_lookup_num_tokens", "assistant_model", "dola_layers")
_OFF_IF_FALSE = ("renormalize_logits", "return_dict_in_generate", "output_scores", "output_logits", "output_attentions",
                 "output_hidden_states", "low_memory", "token_healing")
_NEUTRAL = {
    **dict.fromkeys(_OFF_IF_NONE, (None,)),
    **dict.fromkeys(_OFF_IF_FALSE, (False, None)),
    **dict.fromkeys(("num_beams", "num_beam_groups"), (1, None)),
    **dict.fromkeys(("repetition_penalty", "encoder_repetition_penalty", "typical_p"), (1.0, None)),
    **dict.fromkeys(("no_repeat_ngram_size", "min_length", "min_new_tokens"), (0, None)),
    **dict.fromkeys(("epsilon_cutoff", "eta_cutoff"), (0.0, None)),
    "min_p": (None, 0, 0.0),
    "guidance_scale": (None, 1.0, 1),
}


def _eos_list(eos) -> list[int]:
    if eos is None:
        return []
    if isinstance(eos, torch.Tensor):
        return [int(e) for e in eos.flatten().tolist()]
    return [int(eos)] if isinstance(eos, int) else [int(e) for e in eos]


def supported(model, generation_config, device: torch.device | None = None, allow_device: bool = False) -> str | None:
    """None if ``generate`` can run this model and config itself, else the reason it falls back."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "qwen2":
        return f"model_type {getattr(cfg, 'model_type', None)!r} is not qwen2"
    if getattr(cfg, "use_sliding_window", False):
        return "sliding-window attention"
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    if isinstance(rope, dict) and rope.get("rope_type", "default") != "default":
        return f"rope_type {rope.get('rope_type')}"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"hidden_act {cfg.hidden_act}"
    if model.training and getattr(cfg, "attention_dropout", 0.0):
        return "attention dropout in training mode"
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(model, "lm_head"):
        return "not a Qwen2ForCausalLM layout"
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "peft_config", None):
        return "quantized or PEFT-wrapped model"
    device = device or model.lm_head.weight.device
    if device.type != "cpu" and not allow_device:
        return f"device {device.type} (pass allow_device=True to try)"
    if generation_config is None:
        return "no generation_config"
    if generation_config.max_new_tokens is None:
        return "max_new_tokens unset"
    for key, neutral in _NEUTRAL.items():
        value = getattr(generation_config, key, None)
        if value not in neutral:
            return f"{key}={value!r}"
    if generation_config.do_sample and not (generation_config.temperature or 0) > 0:
        return "do_sample with temperature <= 0"
    # unset, HF would fill them in from the model's own generation_config: leave that to HF
    if not _eos_list(generation_config.eos_token_id) or generation_config.pad_token_id is None:
        return "eos_token_id or pad_token_id unset"
    return None


class _Weights:
    """The model's weights, fused for the decode loop (built once per generate call)."""

    def __init__(self, model):
        cfg = model.config
        inner = model.model
        self.embed = inner.embed_tokens.weight
        self.hidden = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.layers = []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            wqkv = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight], 0)
            bqkv = None
            if a.q_proj.bias is not None:
                bqkv = torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias], 0)
            wgu = torch.cat([m.gate_proj.weight, m.up_proj.weight], 0)
            norms = (layer.input_layernorm, layer.post_attention_layernorm)
            self.layers.append((norms[0].weight, norms[0].variance_epsilon, wqkv, bqkv, a.o_proj.weight, a.o_proj.bias,
                                norms[1].weight, norms[1].variance_epsilon, wgu, m.down_proj.weight))
        self.intermediate = self.layers[0][8].shape[0] // 2
        self.norm_w = inner.norm.weight
        self.norm_eps = inner.norm.variance_epsilon
        self.lm_w = model.lm_head.weight
        self.lm_b = model.lm_head.bias
        rot = inner.rotary_emb
        self.inv_freq = rot.inv_freq
        self.rope_scale = getattr(rot, "attention_scaling", 1.0)
        self.dtype = self.embed.dtype


def _rms(x, w, eps):
    # HF's Qwen2RMSNorm, op for op (so the result is the same to the bit)
    dtype = x.dtype
    x = x.to(torch.float32)
    var = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(var + eps)
    return w * x.to(dtype)


def _rope(x, cos, sin):
    # x (..., heads, hd); cos/sin broadcastable. HF: x*cos + rotate_half(x)*sin
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rot * sin


def _rope_tables(W: _Weights, n_pos: int, device):
    pos = torch.arange(n_pos, device=device)
    freqs = pos[:, None].float() * W.inv_freq.to(device=device, dtype=torch.float)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = (emb.cos() * W.rope_scale).to(W.dtype)
    sin = (emb.sin() * W.rope_scale).to(W.dtype)
    return cos, sin


def _prefill(W, ids, mask_bool, pos, cos_t, sin_t, caches):
    """Full forward over the (left-padded) prompts; writes K/V into caches[:, :, :P]."""
    B, P = ids.shape
    H, KV, hd = W.n_heads, W.n_kv, W.head_dim
    x = F.embedding(ids, W.embed)
    cos = cos_t[pos].unsqueeze(2)  # (B, P, 1, hd)
    sin = sin_t[pos].unsqueeze(2)
    causal = torch.ones(P, P, dtype=torch.bool, device=ids.device).tril()
    eye = torch.eye(P, dtype=torch.bool, device=ids.device)
    # a padding query attends to itself only (keeps its row finite; nothing reads it)
    amask = (causal & mask_bool[:, None, :]) | eye
    amask = amask[:, None]  # (B, 1, P, P)
    for li, (ln1, e1, wqkv, bqkv, wo, bo, ln2, e2, wgu, wd) in enumerate(W.layers):
        h = _rms(x, ln1, e1)
        qkv = F.linear(h, wqkv, bqkv).view(B, P, H + 2 * KV, hd)
        qk = _rope(qkv[:, :, : H + KV], cos, sin)
        q = qk[:, :, :H].transpose(1, 2)
        k = qk[:, :, H:].transpose(1, 2)
        v = qkv[:, :, H + KV :].transpose(1, 2)
        kc, vc = caches[li]
        kc[:B, :, :P] = k
        vc[:B, :, :P] = v
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=amask, scale=W.scaling, enable_gqa=H != KV)
        a = a.transpose(1, 2).reshape(B, P, H * hd)
        x = x + F.linear(a, wo, bo)
        h = _rms(x, ln2, e2)
        gu = F.linear(h, wgu)
        x = x + F.linear(F.silu(gu[..., : W.intermediate]) * gu[..., W.intermediate :], wd)
    last = _rms(x[:, -1], W.norm_w, W.norm_eps)
    return F.linear(last, W.lm_w, W.lm_b).float()


def _decode(W, tok, pos, L, keymask, cos_t, sin_t, caches, attn: str, lo: int = 0):
    """One step for b rows: token ids (b,), positions (b,), cache length after this step L.
    The rows are the working batch's rows lo .. lo + b - 1 (their cache and key-mask rows)."""
    b = tok.shape[0]
    hi = lo + b
    H, KV, hd = W.n_heads, W.n_kv, W.head_dim
    x = F.embedding(tok, W.embed)  # (b, hidden)
    cos = cos_t[pos].unsqueeze(1)  # (b, 1, hd)
    sin = sin_t[pos].unsqueeze(1)
    keymask[lo:hi, L - 1] = True  # the position this step writes
    if attn == "bmm":
        # the whole cache's capacity (contiguous: see _grow), unwritten positions masked out
        C = caches[0][0].shape[2]
        fill = ~keymask[lo:hi, None, :C]  # (b, 1, C)
    m = keymask[lo:hi, None, None, :L]  # (b, 1, 1, L)
    if attn == "eager":
        addmask = torch.zeros(m.shape, dtype=W.dtype, device=tok.device).masked_fill_(~m, torch.finfo(W.dtype).min)
    for li, (ln1, e1, wqkv, bqkv, wo, bo, ln2, e2, wgu, wd) in enumerate(W.layers):
        h = _rms(x, ln1, e1)
        qkv = F.linear(h, wqkv, bqkv).view(b, H + 2 * KV, hd)
        qk = _rope(qkv[:, : H + KV], cos, sin)
        kc, vc = caches[li]
        kc[lo:hi, :, L - 1] = qk[:, H:]
        vc[lo:hi, :, L - 1] = qkv[:, H + KV :]
        q = qk[:, :H].unsqueeze(2)  # (b, H, 1, hd)
        k = kc[lo:hi, :, :L]
        v = vc[lo:hi, :, :L]
        if attn == "bmm":
            # one batched matmul over all (row, kv head) pairs on the contiguous cache, each kv
            # head's query heads as the rows of its matrix (HF's repeat_kv grouping)
            # (in the cache's dtype, generate's kv_dtype; the casts do nothing at the model's)
            G = H // KV
            cd = kc.dtype
            s = torch.bmm(q.reshape(b * KV, G, hd).to(cd), kc[lo:hi].view(b * KV, C, hd).transpose(1, 2)).to(W.dtype)
            s = s.view(b, H, C).mul_(W.scaling).masked_fill_(fill, torch.finfo(s.dtype).min)
            p = torch.softmax(s, dim=-1, dtype=torch.float32).to(cd)
            a = torch.bmm(p.view(b * KV, G, C), vc[lo:hi].view(b * KV, C, hd)).to(W.dtype)
        elif attn == "sdpa":
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=W.scaling, enable_gqa=H != KV)
        else:
            if H != KV:
                q = q.view(b, KV, H // KV, hd)  # the query heads of one kv head share its keys
            s = torch.matmul(q, k.transpose(-1, -2)) * W.scaling + addmask
            a = torch.matmul(torch.softmax(s, dim=-1, dtype=torch.float32).to(W.dtype), v)
        x = x + F.linear(a.reshape(b, H * hd), wo, bo)
        h = _rms(x, ln2, e2)
        gu = F.linear(h, wgu)
        x = x + F.linear(F.silu(gu[:, : W.intermediate]) * gu[:, W.intermediate :], wd)
    return F.linear(_rms(x, W.norm_w, W.norm_eps), W.lm_w, W.lm_b).float()


_ATTN = ("sdpa", "eager", "bmm")

# positions the "bmm" cache grows by: it attends over up to this many unwritten (masked) ones,
# and copies the cache once per this many steps
_CHUNK = 32


def _grow(caches, rows: int, filled: int, capacity: int):
    """The first ``rows`` rows of each cache, with their ``filled`` positions, in new contiguous
    caches of ``capacity`` positions (contiguous, so that a row's keys are one matrix for bmm)."""
    out = []
    for kc, vc in caches:
        nk = kc.new_empty(rows, kc.shape[1], capacity, kc.shape[3])
        nv = vc.new_empty(rows, vc.shape[1], capacity, vc.shape[3])
        nk[:, :, :filled] = kc[:rows, :, :filled]
        nv[:, :, :filled] = vc[:rows, :, :filled]
        nk[:, :, filled:].zero_()  # masked, but must be finite (see the allocation in _sample)
        nv[:, :, filled:].zero_()
        out.append((nk, nv))
    return out


# rows a shard of the decode step must have to get a thread of its own (see _step_shards)
_MIN_SHARD = 16


def _select(logits, noise, temperature, top_k, top_p, exact_rng):
    """The next token of each row from its logits and its random numbers (``draw`` in _sample;
    None: greedy). Row by row, so a shard of the rows selects what the whole batch would."""
    if noise is None:
        return torch.argmax(logits, dim=-1)
    scores = _warp(logits, temperature, top_k, top_p)
    if exact_rng:  # torch.multinomial's kernel: argmax(probs / exponential noise)
        return torch.argmax(torch.softmax(scores, dim=-1) / noise, dim=-1)
    # inverse CDF on unnormalized weights: exactly softmax's distribution
    w = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    cdf = w.cumsum_(dim=-1)
    return torch.searchsorted(cdf, noise * cdf[:, -1:], right=True).squeeze(1).clamp_(max=cdf.shape[-1] - 1)


def _step(decode, args, lo, noise, sel):
    """Decode step and token selection for the working rows lo .. lo + len(tok) - 1."""
    return _select(decode(*args, lo), noise, *sel)


def _in_inference(fn, *args):
    with torch.inference_mode():  # thread-local: the caches are inference tensors
        return fn(*args)


def _step_shards(decode, pool, workers, args, noise, sel):
    """The decode step and token selection, the rows split into contiguous shards, one per
    thread (``workers``); ``args`` are _decode's for the whole working batch.

    Each row's logits and token come from that row alone, so a shard gives the same tokens to
    the bit as the whole batch; the random numbers are drawn once, in the calling thread, and
    so are compaction and the cache's growth. Threads of Python rather than torch's intra-op
    threads: those meet at a barrier in every op (a decode step has hundreds), these once per
    step, and torch releases the GIL inside its ops."""
    W, tok, pos, *rest = args
    b = tok.shape[0]
    n = min(workers, b // _MIN_SHARD)
    if n <= 1:
        return _step(decode, args, 0, noise, sel)
    cut = [b * i // n for i in range(n + 1)]

    def part(lo, hi):
        return (W, tok[lo:hi], pos[lo:hi], *rest), lo, None if noise is None else noise[lo:hi], sel

    futures = [pool.submit(_in_inference, _step, decode, *part(lo, hi)) for lo, hi in zip(cut[1:-1], cut[2:])]
    first = _step(decode, *part(0, cut[1]))
    return torch.cat([first] + [f.result() for f in futures])


_COMPILED = None


def _compiled_decode():
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = torch.compile(_decode, dynamic=True)
    return _COMPILED


def _warp(scores, temperature, top_k, top_p):
    """HF's TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, in that order."""
    if temperature is not None and temperature != 1.0:
        scores = scores / temperature
    if top_k:
        k = min(top_k, scores.shape[-1])
        remove = scores < torch.topk(scores, k)[0][..., -1, None]
        scores = scores.masked_fill(remove, -float("inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(scores, descending=False)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_remove = cum <= (1 - top_p)
        sorted_remove[..., -1:] = 0
        remove = sorted_remove.scatter(1, sorted_idx, sorted_remove)
        scores = scores.masked_fill(remove, -float("inf"))
    return scores


def generate(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    generation_config=None,
    *,
    exact_rng: bool = False,
    attn: str = "sdpa",
    compact_every: float = 0.125,
    compile: bool = False,
    workers: int = 1,
    kv_dtype: torch.dtype | None = None,
    allow_device: bool = False,
    fallback: bool = True,
) -> torch.Tensor:
    """``model.generate(input_ids=..., attention_mask=..., generation_config=...)``, faster.

    Returns the sequences tensor HF returns: (batch * num_return_sequences, prompt + the longest
    completion), each completion padded with ``pad_token_id`` after its eos.

    exact_rng: draw HF's ``torch.multinomial`` random numbers (HF's tokens; slower).
    attn: the decode step's attention: "sdpa" (HF's), "eager" (HF's eager formula) or "bmm" (two
    batched matmuls over a contiguous cache that grows in chunks; the same result to float
    rounding, so not always sdpa's tokens). compact_every: drop finished rows (and their cache)
    once at least this fraction of the working rows has finished (0: at every finish).
    compile: the decode step through ``torch.compile(dynamic=True)`` (for benchmarks; its logits
    may differ from HF's in the last bits). workers: threads the decode step's rows are split
    over (``_step_shards``); the same tokens for any number. kv_dtype: the "bmm" cache's dtype
    (None: the model's), its two matmuls in it, the softmax in float32; in no recipe, as it
    samples from a policy a little off the one the trainer scores. allow_device: try a non-CPU
    device. fallback: on an unsupported model or config, call HF generate instead of raising.
    """
    if attn not in _ATTN:
        raise ValueError(f"tinyzero.fastgen: attn={attn!r}: choose from {list(_ATTN)}")
    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
        raise ValueError(f"tinyzero.fastgen: workers={workers!r}: a whole number of threads, at least 1")
    if kv_dtype is not None and (attn != "bmm" or not isinstance(kv_dtype, torch.dtype) or not kv_dtype.is_floating_point):
        raise ValueError(f"tinyzero.fastgen: kv_dtype={kv_dtype!r} needs attn='bmm' and a floating-point torch dtype")
    gc = generation_config if generation_config is not None else model.generation_config
    reason = supported(model, gc, input_ids.device, allow_device)
    if reason is not None:
        if not fallback:
            raise ValueError(f"tinyzero.fastgen cannot run this: {reason}")
        hf = getattr(model, "_fastgen_hf_generate", None) or type(model).generate.__get__(model)
        return hf(input_ids=input_ids, attention_mask=attention_mask, generation_config=gc)
    with torch.inference_mode():
        with ThreadPoolExecutor(workers - 1) if workers > 1 else contextlib.nullcontext() as pool:
            seqs = _sample(model, input_ids, attention_mask, gc, exact_rng, attn, compact_every, compile, workers, pool, kv_dtype)
    return seqs.clone()  # a normal tensor (not an inference tensor) for the caller


def _sample(model, input_ids, attention_mask, gc, exact_rng, attn, compact_every, compile, workers=1, pool=None, kv_dtype=None):
    device = input_ids.device
    eos = _eos_list(gc.eos_token_id)
    pad = gc.pad_token_id
    n_ret = gc.num_return_sequences or 1
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if n_ret > 1:  # HF expands each prompt into n_ret consecutive rows
        input_ids = input_ids.repeat_interleave(n_ret, dim=0)
        attention_mask = attention_mask.repeat_interleave(n_ret, dim=0)
    B, P = input_ids.shape
    max_new = int(gc.max_new_tokens)
    do_sample = bool(gc.do_sample)
    temperature = gc.temperature if do_sample else None
    top_k = gc.top_k if do_sample else None
    top_p = gc.top_p if do_sample else None

    W = _Weights(model)
    decode = _compiled_decode() if compile else _decode
    T = P + max_new
    cos_t, sin_t = _rope_tables(W, T, device)
    mask_bool = attention_mask.bool()
    # positions as HF computes them: cumsum of the mask - 1, padding at 0
    pos_prompt = (attention_mask.long().cumsum(-1) - 1).masked_fill(~mask_bool, 0)
    # "bmm" attends over the cache's whole capacity, so it grows in chunks as the completions
    # do (see _grow); the other modes slice a cache of the full length
    # (zeros: a masked position's weight is exactly 0, and 0 x garbage could be NaN)
    cap, alloc = (min(T, P + _CHUNK), torch.zeros) if attn == "bmm" else (T, torch.empty)
    kv = kv_dtype or W.dtype  # the cache's dtype (generate's kv_dtype)
    caches = [
        (
            alloc(B, W.n_kv, cap, W.head_dim, dtype=kv, device=device),
            alloc(B, W.n_kv, cap, W.head_dim, dtype=kv, device=device),
        )
        for _ in W.layers
    ]
    keymask = torch.zeros(B, T, dtype=torch.bool, device=device)  # each decode step sets its own position
    keymask[:, :P] = mask_bool
    out = torch.full((B, T), pad, dtype=input_ids.dtype, device=device)
    out[:, :P] = input_ids
    eos_t = torch.tensor(eos, dtype=input_ids.dtype, device=device)

    rows = torch.arange(B, device=device)  # original row of each row in the working batch
    alive = torch.ones(B, dtype=torch.bool, device=device)  # per working row
    pos = pos_prompt[:, -1]  # position of the last token of each row
    n_alive = B
    n_rows = B
    steps = 0
    # GRPO repeats each prompt num_generations times: run the prefill once per distinct row
    uniq, inverse = torch.unique(torch.cat([input_ids, attention_mask.to(input_ids.dtype)], 1), dim=0, return_inverse=True)
    if len(uniq) < B:
        U = len(uniq)
        first = torch.full((U,), B, dtype=torch.long, device=device).scatter_reduce_(
            0, inverse, torch.arange(B, device=device), reduce="amin"
        )
        logits = _prefill(W, input_ids[first], mask_bool[first], pos_prompt[first], cos_t, sin_t, caches)[inverse]
        for kc, vc in caches:
            kc[:, :, :P] = kc[inverse, :, :P]
            vc[:, :, :P] = vc[inverse, :, :P]
    else:
        logits = _prefill(W, input_ids, mask_bool, pos_prompt, cos_t, sin_t, caches)
    vocab = W.lm_w.shape[0]
    sel = (temperature, top_k, top_p, exact_rng)

    def draw():
        """This step's random numbers for the working rows, drawn here, in the calling thread,
        whatever the workers: one uniform per row, or (exact_rng) HF's exponential for every
        vocabulary entry of every row of the full batch."""
        if not do_sample:
            return None
        if exact_rng:
            return torch.empty(B, vocab, dtype=torch.float32, device=device).exponential_(1)[rows]
        return torch.rand(n_rows, 1, dtype=torch.float32, device=device)

    tok = _select(logits, draw(), *sel)
    while True:
        tok = tok.to(input_ids.dtype)
        col = P + steps
        steps += 1
        if n_alive == n_rows:
            out[rows, col] = tok
        else:
            out[rows[alive], col] = tok[alive]
        alive = alive & ~torch.isin(tok, eos_t)
        n_alive = int(alive.sum())
        if n_alive == 0 or steps >= max_new:
            break
        # drop finished rows once enough of them have piled up (dead ones are computed but ignored)
        if n_rows - n_alive > compact_every * n_rows:
            keep = alive.nonzero().squeeze(1)
            L = P + steps - 1  # cache filled so far
            for kc, vc in caches:
                kc[:n_alive, :, :L] = kc[keep, :, :L]
                vc[:n_alive, :, :L] = vc[keep, :, :L]
            keymask[:n_alive] = keymask[keep]
            rows, tok, pos = rows[keep], tok[keep], pos[keep]
            alive = alive[keep]
            n_rows = n_alive
        pos = pos + 1
        if P + steps > caches[0][0].shape[2]:
            caches = _grow(caches, n_rows, P + steps - 1, min(T, caches[0][0].shape[2] + _CHUNK))
        tok = _step_shards(decode, pool, workers, (W, tok, pos, P + steps, keymask, cos_t, sin_t, caches, attn), draw(), sel)
    return out[:, : P + steps]
