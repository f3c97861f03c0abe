"""tinyzero.fastgen against HF generate: same tokens (greedy, and sampling under the same seed
with exact_rng), the same distribution (its fast sampler), eos / pad / length handling, the
fallback, and the model.generate hook that GRPOTrainer goes through."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import GenerationConfig, Qwen2ForCausalLM

from tinyzero import fastgen
from tinyzero.nano import tokenizer as nano
from tinyzero.nano.build import find_base_model, load_config, model_config
from tinyzero.trainer import install_sampler, uninstall_sampler

BASE = find_base_model(load_config())  # the nano recipe's base model (shipped, or a rebuild in the cache)
PROMPTS = ["Make 24 from 3 5 7 9", "Make 5 from 1 2", "hi", "Make 100 from 25 4 9 1 1"]


@pytest.fixture(scope="module")
def tok():
    return nano.build_tokenizer()


def random_model(tok, num_heads=2, num_kv_heads=2, eos_boost=20.0, seed=0):
    """A random nano-config model; eos_boost scales the (tied) eos embedding so that rows end
    at different steps (with 0 it almost never ends)."""
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(model_config(len(tok), num_heads=num_heads, num_kv_heads=num_kv_heads)).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight[1] *= eos_boost
    return model


def config(max_new=48, do_sample=True, temperature=0.6, top_p=1.0, top_k=0, eos=(1,), pad=0, **kw):
    extra = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": top_k} if do_sample else {"do_sample": False}
    return GenerationConfig(max_new_tokens=max_new, pad_token_id=pad, eos_token_id=list(eos), disable_compile=True, **extra, **kw)


def encode(tok, prompts):
    return tok(prompts, return_tensors="pt", padding=True, padding_side="left")


def both(model, enc, gc, seed=1, **opts):
    """(HF sequences, fastgen sequences, and whether the RNG is left in the same state)."""
    torch.manual_seed(seed)
    a = model.generate(**enc, generation_config=gc)
    after_a = torch.rand(4)
    torch.manual_seed(seed)
    b = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, **opts)
    after_b = torch.rand(4)
    return a, b, torch.equal(after_a, after_b)


def completion_lengths(seqs, prompt_len, eos=(1,)):
    comp = seqs[:, prompt_len:]
    is_eos = torch.isin(comp, torch.tensor(eos))
    return torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, torch.full((len(comp),), comp.shape[1]))


def first_decode_logits(model, enc, attn, capacity, dtype=torch.float32):
    """The logits of fastgen's first decode step after the prefill, on caches of ``capacity``
    positions in ``dtype`` (the "bmm" attention attends over all of them, unwritten ones masked)."""
    W = fastgen._Weights(model)
    P = enc["input_ids"].shape[1]
    cos, sin = fastgen._rope_tables(W, capacity, torch.device("cpu"))
    mask = enc["attention_mask"].bool()
    pos = (enc["attention_mask"].cumsum(-1) - 1).masked_fill(~mask, 0)
    caches = [(torch.zeros(len(mask), W.n_kv, capacity, W.head_dim, dtype=dtype), torch.zeros(len(mask), W.n_kv, capacity, W.head_dim, dtype=dtype)) for _ in W.layers]
    keymask = torch.zeros(len(mask), capacity, dtype=torch.bool)
    keymask[:, :P] = mask
    with torch.no_grad():
        first = fastgen._prefill(W, enc["input_ids"], mask, pos, cos, sin, caches).argmax(-1)
        return fastgen._decode(W, first, pos[:, -1] + 1, P + 1, keymask, cos, sin, caches, attn)


@pytest.mark.parametrize("heads", [(2, 2), (4, 2)])  # nano's shape, and grouped-query attention
def test_greedy_identical(tok, heads):
    model = random_model(tok, *heads)
    enc = encode(tok, PROMPTS * 8)
    a, b, _ = both(model, enc, config(do_sample=False))
    assert torch.equal(a, b)
    lens = completion_lengths(a, enc["input_ids"].shape[1])
    assert len(set(lens.tolist())) > 2  # rows ended at different steps


@pytest.mark.parametrize("warp", [{}, {"top_k": 5}, {"top_p": 0.9}, {"temperature": 1.0, "top_k": 50, "top_p": 0.8}])
def test_sampling_bit_identical_with_exact_rng(tok, warp):
    model = random_model(tok, 4, 2)
    enc = encode(tok, PROMPTS * 16)
    a, b, same_rng = both(model, enc, config(**warp), exact_rng=True)
    assert torch.equal(a, b)
    assert same_rng  # the caller's random stream continues as after HF generate
    assert len(set(completion_lengths(a, enc["input_ids"].shape[1]).tolist())) > 4


def test_compaction_policy_does_not_change_tokens(tok):
    model = random_model(tok)
    enc = encode(tok, PROMPTS * 16)
    gc = config()
    runs = []
    for every in (0.0, 0.125, 0.5, 1.0):  # compact at every finish ... never
        torch.manual_seed(3)
        runs.append(fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, exact_rng=True, compact_every=every))
    assert all(torch.equal(runs[0], r) for r in runs[1:])
    torch.manual_seed(3)
    eager = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], config(do_sample=False), attn="eager")
    torch.manual_seed(3)
    hf = model.generate(**enc, generation_config=config(do_sample=False))
    assert torch.equal(eager, hf)


def test_fast_sampler_same_distribution(tok):
    """The default sampler (inverse CDF) against the exact softmax(logits / T) and HF."""
    model = random_model(tok, eos_boost=0.0)
    enc = encode(tok, ["Make 24 from"] * 6000)
    gc = config(max_new=1, temperature=0.6)
    torch.manual_seed(0)
    seqs = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc)
    with torch.no_grad():
        probs = torch.softmax(model(**encode(tok, ["Make 24 from"])).logits[0, -1] / 0.6, -1)
    counts = torch.bincount(seqs[:, -1], minlength=len(probs)).double()
    expected = probs.double() * len(seqs)
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    dof = len(probs) - 1
    assert chi2 < dof + 6 * (2 * dof) ** 0.5, (chi2, dof)  # chi-square test, ~6 sigma
    # and a sharper distribution (a colder temperature), where a bias would show more
    gc = config(max_new=1, temperature=0.05)
    seqs = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc)
    with torch.no_grad():
        probs = torch.softmax(model(**encode(tok, ["Make 24 from"])).logits[0, -1].double() / 0.05, -1)
    freq = torch.bincount(seqs[:, -1], minlength=len(probs)).double() / len(seqs)
    assert 0.5 * (freq - probs).abs().sum().item() < 0.02
    # mean completion length over many samples, HF vs fastgen (eos-boosted: lengths vary)
    model = random_model(tok, eos_boost=20.0)
    enc = encode(tok, PROMPTS * 100)
    gc = config(max_new=40, temperature=1.0)
    torch.manual_seed(5)
    hf = completion_lengths(model.generate(**enc, generation_config=gc), enc["input_ids"].shape[1]).float()
    torch.manual_seed(6)
    fg = completion_lengths(fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc), enc["input_ids"].shape[1]).float()
    se = (hf.var() / len(hf) + fg.var() / len(fg)).sqrt()
    assert abs(hf.mean() - fg.mean()) < 4 * se, (hf.mean(), fg.mean(), se)
    # per prompt too: each prompt's own length distribution
    for p in range(len(PROMPTS)):
        h, f = hf[p :: len(PROMPTS)], fg[p :: len(PROMPTS)]
        se_p = (h.var() / len(h) + f.var() / len(f)).sqrt()
        assert abs(h.mean() - f.mean()) < 4.5 * se_p + 1e-6, (p, h.mean(), f.mean(), se_p)


def test_eos_pad_and_length(tok):
    model = random_model(tok)
    enc = encode(tok, PROMPTS * 8)
    P = enc["input_ids"].shape[1]
    for gc in (config(max_new=7), config(max_new=48, eos=(1, 5), pad=2), config(max_new=200, do_sample=False)):
        torch.manual_seed(0)
        out = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc)
        assert torch.equal(out[:, :P], enc["input_ids"])
        comp = out[:, P:]
        eos = torch.tensor(gc.eos_token_id)
        lens = completion_lengths(out, P, gc.eos_token_id)
        assert comp.shape[1] <= gc.max_new_tokens
        assert comp.shape[1] == lens.max()  # HF's width: the longest completion
        for row, n in zip(comp, lens.tolist()):
            assert not torch.isin(row[: n - 1], eos).any()
            assert (row[n:] == gc.pad_token_id).all()
    # the same, against HF, for the two-eos / separate-pad config and exact sampling
    a, b, _ = both(model, enc, config(max_new=48, eos=(1, 5), pad=2), exact_rng=True)
    assert torch.equal(a, b)
    # nothing ends: every row runs to max_new_tokens
    model = random_model(tok, eos_boost=0.0)
    a, b, _ = both(model, enc, config(max_new=9, do_sample=False))
    assert torch.equal(a, b) and a.shape[1] == P + 9


def test_num_return_sequences_and_fallback(tok):
    model = random_model(tok)
    enc = encode(tok, PROMPTS)
    a, b, _ = both(model, enc, config(num_return_sequences=4), exact_rng=True)
    assert a.shape[0] == 16 and torch.equal(a, b)
    gc = config(repetition_penalty=1.3)
    assert fastgen.supported(model, gc) is not None
    a, b, _ = both(model, enc, gc)  # falls back to HF generate
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, fallback=False)


def test_install_hook(tok):
    model = random_model(tok)
    enc = encode(tok, PROMPTS * 4)
    gc = config()
    torch.manual_seed(1)
    hf = model.generate(**enc, generation_config=gc)
    install_sampler(model, "fastgen_exact")
    torch.manual_seed(1)
    hooked = model.generate(**enc, generation_config=gc)  # how TRL calls it
    assert model._fastgen_calls == 1 and torch.equal(hf, hooked)
    model.generate(**enc, generation_config=gc, output_scores=False)  # extra kwarg: HF path
    assert model._fastgen_calls == 1
    clone = copy.deepcopy(model)  # the bound method follows the copy
    clone.generate(**enc, generation_config=gc)
    assert clone._fastgen_calls == 2 and model._fastgen_calls == 1
    uninstall_sampler(model)
    assert "generate" not in model.__dict__
    torch.manual_seed(1)
    assert torch.equal(model.generate(**enc, generation_config=gc), hf)
    # the same sampler as a function (the held-out eval's and tinyzero.eval's way), no hook
    torch.manual_seed(1)
    assert torch.equal(fastgen.sampler("fastgen_exact")(model, **enc, generation_config=gc), hf)


@pytest.mark.skipif(BASE is None, reason="no nano base model for the recipe here")
def test_real_base_model():
    from tinyzero.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(BASE))
    model.eval()
    from tinyzero.tasks.data import load_task_data

    rows = load_task_data("countdown_nano", split="test", template="nano")
    enc = encode(tokenizer, [rows[i]["prompt"] for i in range(24)])
    eos = [tokenizer.eos_token_id]
    a, b, _ = both(model, enc, config(max_new=128, do_sample=False, eos=eos, pad=tokenizer.pad_token_id))
    assert torch.equal(a, b)
    a, b, same = both(model, enc, config(max_new=128, eos=eos, pad=tokenizer.pad_token_id), exact_rng=True)
    assert torch.equal(a, b) and same


@pytest.mark.parametrize("heads", [(2, 2), (4, 2)])
def test_bmm_attention(tok, heads):
    """The "bmm" decode attention (the fastgen sampler's) on its growing cache: HF's greedy tokens
    over several cache growths, the same logits as SDPA to float rounding, and (under exact_rng)
    the same tokens whatever the compaction policy."""
    model = random_model(tok, *heads, eos_boost=8.0)
    enc = encode(tok, PROMPTS * 8)
    P = enc["input_ids"].shape[1]
    gc = config(max_new=3 * fastgen._CHUNK + 5, do_sample=False)
    a, b, _ = both(model, enc, gc, attn="bmm")
    assert torch.equal(a, b)
    assert completion_lengths(a, P).max() > 2 * fastgen._CHUNK  # the cache grew at least twice
    # the first decode step's logits, bmm against sdpa
    bmm = first_decode_logits(model, enc, "bmm", P + fastgen._CHUNK)
    assert torch.allclose(bmm, first_decode_logits(model, enc, "sdpa", P + 4), atol=1e-5, rtol=1e-5)
    runs = []
    for every in (0.0, 0.5, 1.0):
        torch.manual_seed(3)
        runs.append(fastgen.generate(model, enc["input_ids"], enc["attention_mask"], config(max_new=80), exact_rng=True, attn="bmm", compact_every=every))
    assert all(torch.equal(runs[0], r) for r in runs[1:])


def test_bf16_kv_cache_is_close_to_float32_and_refused_elsewhere(tok):
    """``kv_dtype=torch.bfloat16`` (measured, in no recipe): the first decode step's logits within
    bfloat16's rounding of float32's, not equal to them (the cache really is bfloat16), greedy
    tokens mostly the same through cache growths; any other attention, or a non-float dtype,
    is refused."""
    model = random_model(tok, 4, 2, eos_boost=8.0)
    enc = encode(tok, PROMPTS * 8)
    P = enc["input_ids"].shape[1]
    logits = {dtype: first_decode_logits(model, enc, "bmm", P + fastgen._CHUNK, dtype) for dtype in (torch.float32, torch.bfloat16)}
    diff = (logits[torch.bfloat16] - logits[torch.float32]).abs().max()
    assert 0 < diff < 0.02 * logits[torch.float32].std()
    gc = config(max_new=2 * fastgen._CHUNK + 5, do_sample=False)
    a = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, attn="bmm")
    b = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, attn="bmm", kv_dtype=torch.bfloat16)
    assert (a[:, P : P + 8] == b[:, P : P + 8]).float().mean() > 0.9
    for bad in ({"attn": "sdpa", "kv_dtype": torch.bfloat16}, {"attn": "bmm", "kv_dtype": torch.int8}, {"attn": "bmm", "kv_dtype": "bfloat16"}):
        with pytest.raises(ValueError, match="kv_dtype="):
            fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, **bad)


def test_bmm_cache_growth_with_garbage_memory(tok, monkeypatch):
    """A grown cache's unwritten tail is masked, but 0 x NaN is NaN: it must be made finite.
    Fresh memory is usually zero, so here new_empty hands out NaN."""
    model = random_model(tok, eos_boost=8.0)
    enc = encode(tok, PROMPTS * 4)
    gc = config(max_new=2 * fastgen._CHUNK + 5, do_sample=False)
    torch.manual_seed(1)
    hf = model.generate(**enc, generation_config=gc)
    real = torch.Tensor.new_empty
    monkeypatch.setattr(torch.Tensor, "new_empty", lambda self, *size, **kw: real(self, *size, **kw).fill_(float("nan")))
    out = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, attn="bmm")
    assert torch.equal(out, hf)


def test_unknown_attention_is_refused(tok):
    model = random_model(tok)
    enc = encode(tok, PROMPTS)
    with pytest.raises(ValueError, match="attn='flash'"):
        fastgen.generate(model, enc["input_ids"], enc["attention_mask"], config(), attn="flash")


@pytest.mark.parametrize("opts", [{"attn": "bmm"}, {"exact_rng": True, "attn": "sdpa"}, {"attn": "bmm", "do_sample": False}])
def test_workers_give_the_same_tokens(tok, opts, monkeypatch):
    """The decode step's rows split over threads (``workers``, the recipes' sampling_workers): the
    tokens of one worker to the bit, for the samplers' options and greedy, through compaction and
    two cache growths; exact_rng still HF's tokens. Shards must really have run (lo > 0)."""
    opts = dict(opts)
    sampled = opts.pop("do_sample", True)
    gc = config(max_new=2 * fastgen._CHUNK + 5, do_sample=sampled)
    model = random_model(tok, 4, 2, eos_boost=8.0)
    enc = encode(tok, PROMPTS * 16)  # 64 rows: room for 3 shards of at least _MIN_SHARD
    starts = []
    step = fastgen._step
    monkeypatch.setattr(fastgen, "_step", lambda decode, args, lo, noise, sel: starts.append(lo) or step(decode, args, lo, noise, sel))
    runs = []
    for workers in (1, 2, 3):
        torch.manual_seed(3)
        runs.append(fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, workers=workers, **opts))
    assert all(torch.equal(runs[0], r) for r in runs[1:])
    assert max(starts) >= 2 * fastgen._MIN_SHARD  # a third shard ran, at least once
    lens = completion_lengths(runs[0], enc["input_ids"].shape[1])
    # rows ended apart (greedy: 4 prompts, so at most 4 lengths), and the cache grew
    assert len(set(lens.tolist())) > (4 if sampled else 1) and lens.max() > fastgen._CHUNK
    if opts.get("exact_rng"):
        torch.manual_seed(3)
        assert torch.equal(model.generate(**enc, generation_config=gc), runs[-1])


def test_workers_are_checked():
    with pytest.raises(ValueError, match="workers=0"):
        fastgen.generate(torch.nn.Linear(1, 1), torch.ones(1, 1, dtype=torch.long), None, config(), workers=0)
    with pytest.raises(ValueError, match="needs a fastgen sampler"):
        fastgen.check_workers("hf", 2)
    fastgen.check_workers("hf", 1)
    fastgen.check_workers("fastgen", 4)


def test_samplers_attention():
    """The recipes' fastgen attends with bmm; fastgen_exact keeps SDPA (HF's logits, HF's tokens)."""
    assert fastgen.SAMPLER_OPTIONS["fastgen"]["attn"] == "bmm"
    assert fastgen.SAMPLER_OPTIONS["fastgen_exact"] == {"exact_rng": True, "attn": "sdpa"}
    model = torch.nn.Linear(1, 1)
    model.generate = lambda **kw: None
    for name, opts in fastgen.SAMPLER_OPTIONS.items():
        install_sampler(model, name, workers=2)
        assert model._fastgen_options == {**opts, "workers": 2}
    assert fastgen.sampler("hf") is None
