"""How fast the nano model samples: HF generate vs tinyzero.fastgen, against the arithmetic floor.

    python benchmarks/sampling_speed.py                      # GRPO shape, 1 thread, hf + fast
    python benchmarks/sampling_speed.py --shape eval --threads 1 2
    python benchmarks/sampling_speed.py --methods hf fast exact --repeats 3 --max_new 256

Shapes (as recipes/nano.yaml samples them):
- ``grpo``: 16 prompts x 16 completions = 256 rows in one generate call, up to 256 new tokens,
  temperature 0.6, top_p 1.0, top_k 0, stop at eos per row;
- ``eval``: the held-out eval: 500 prompts x 1, in generate calls of 250 (eval_batch_size).

Methods: ``hf`` (``model.generate``), ``fast`` (the ``fastgen`` sampler of the recipes:
inverse-CDF sampling, "bmm" attention), ``exact`` (``fastgen_exact``: HF's random stream,
SDPA attention), ``fast-sdpa`` and ``fast-eager`` (``fast`` with SDPA or eager attention) and
``fast-2w-bf16kv`` (``fast-2w`` with a bfloat16 KV cache: ``kv_dtype``, no recipe's setting),
``fast-compile`` (``fast-sdpa`` with the decode step under torch.compile; its first call,
compile included, is timed and printed separately). See ``tinyzero.fastgen.SAMPLER_OPTIONS``.

Per method and thread count: the median of --repeats runs (same seed each run; methods
taken in turn, round-robin) of seconds,
tokens generated (completion tokens, eos included), tokens/s, and the floor: the arithmetic
the tokens need (``tinyzero.fastgen.flop_floor``: 2 x non-embedding params per processed
token + attention q.k and p.v over the context + lm_head 2 x hidden x vocab per sampled
token) divided by the matmul speed measured here for the decode step's own shapes; ratio =
measured seconds / floor seconds. Also printed: the KV cache bytes a decode loop must read
(every step reads every live row's keys and values) over the measured copy bandwidth, a
second floor that dominates at long contexts. Load (``os.getloadavg``) is printed with each row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F

DEFAULT_MODEL = "nano"  # the nano recipe's base model (pretrained on first use)


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="a nano save_pretrained folder, or 'random' (random init)")
    ap.add_argument("--shape", choices=["grpo", "eval"], nargs="+", default=["grpo"])
    ap.add_argument("--methods", nargs="+", default=["hf", "fast"], choices=["hf", "fast", "fast-1w", "fast-2w", "fast-2w-bf16kv", "exact", "fast-sdpa", "fast-eager", "fast-compile"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max_new", type=int, default=256)
    ap.add_argument("--prompts", type=int, default=16, help="grpo shape: prompts (x --generations rows)")
    ap.add_argument("--generations", type=int, default=16)
    ap.add_argument("--eval_size", type=int, default=500)
    ap.add_argument("--eval_batch", type=int, default=250)
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def load(path):
    from tinyzero.nano import tokenizer as nano
    from tinyzero.nano.build import model_config

    if path == "random":
        from transformers import Qwen2ForCausalLM

        tok = nano.build_tokenizer()
        torch.manual_seed(0)
        cfg = model_config(len(tok), num_heads=2, num_kv_heads=2)
        return Qwen2ForCausalLM(cfg).eval(), tok
    from tinyzero.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(path)
    return model.eval(), tok


def batches(tok, shape, args):
    from tinyzero.tasks.data import load_task_data

    if shape == "grpo":
        rows = load_task_data("countdown_nano", split="train", template="nano")
        prompts = [rows[i]["prompt"] for i in range(args.prompts) for _ in range(args.generations)]
        chunks = [prompts]
    else:
        rows = load_task_data("countdown_nano", split="test", template="nano")
        prompts = [rows[i]["prompt"] for i in range(min(args.eval_size, len(rows)))]
        chunks = [prompts[i : i + args.eval_batch] for i in range(0, len(prompts), args.eval_batch)]
    return [tok(c, return_tensors="pt", padding=True, padding_side="left") for c in chunks]


def gen_config(model, tok, args):
    from tinyzero.sampling import sampling_config

    return sampling_config(model, tok, args.max_new, temperature=args.temperature, top_p=1.0, top_k=0)


def matmul_gflops(config, rows: int, repeats: int = 30) -> float:
    """GFLOP/s of F.linear over one decode step's matmul shapes at this batch (this machine, now)."""
    h, inter, V = config.hidden_size, config.intermediate_size, config.vocab_size
    H, kv = config.num_attention_heads, config.num_key_value_heads
    hd = getattr(config, "head_dim", None) or h // H
    shapes = [(h, (H + 2 * kv) * hd), (H * hd, h), (h, 2 * inter), (inter, h)] * config.num_hidden_layers + [(h, V)]
    mats = [(torch.randn(rows, k), torch.randn(n, k)) for k, n in shapes]
    flops = sum(2 * rows * k * n for k, n in shapes)
    for x, w in mats:
        F.linear(x, w)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            for x, w in mats:
                F.linear(x, w)
        times.append((time.perf_counter() - t) / repeats)
    return flops / statistics.median(times) / 1e9


def copy_gbps(nbytes: int = 64 << 20) -> float:
    a = torch.empty(nbytes // 4)
    b = torch.empty_like(a)
    b.copy_(a)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        b.copy_(a)
        times.append(time.perf_counter() - t)
    return 2 * nbytes / statistics.median(times) / 1e9  # read + write


def kv_read_bytes(config, prompt_lens, completion_lens, itemsize=4) -> int:
    """Bytes of K and V that decode steps read: step j of a row reads (p + j) positions."""
    hd = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_pos = 2 * config.num_hidden_layers * config.num_key_value_heads * hd * itemsize
    total = 0
    for p, c in zip(prompt_lens, completion_lens):
        total += per_pos * sum(p + j for j in range(1, c))  # c - 1 decode steps after the prefill
    return total


def run_once(method, model, encs, gc, seed):
    from tinyzero import fastgen

    torch.manual_seed(seed)
    outs = []
    t = time.perf_counter()
    for enc in encs:
        if method == "hf":
            outs.append(model.generate(**enc, generation_config=gc))
        else:
            opts = dict(fastgen.SAMPLER_OPTIONS["fastgen_exact" if method == "exact" else "fastgen"])
            if method in ("fast-sdpa", "fast-eager", "fast-compile"):
                opts["attn"] = "eager" if method == "fast-eager" else "sdpa"
            opts["compile"] = method == "fast-compile"
            if method in ("fast-1w", "fast-2w", "fast-2w-bf16kv"):
                opts["workers"] = int(method[5])
            if method.endswith("-bf16kv"):
                opts["kv_dtype"] = torch.bfloat16
            outs.append(fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, **opts))
    return time.perf_counter() - t, outs


def lengths(encs, outs, eos):
    eos_t = torch.tensor(eos)
    prompt_lens, comp_lens = [], []
    for enc, out in zip(encs, outs):
        P = enc["input_ids"].shape[1]
        comp = out[:, P:]
        is_eos = torch.isin(comp, eos_t)
        n = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, torch.full((len(comp),), comp.shape[1]))
        prompt_lens += enc["attention_mask"].sum(1).tolist()
        comp_lens += n.tolist()
    return prompt_lens, comp_lens


def main(argv=None):
    args = parse(argv)
    from tinyzero import fastgen
    from tinyzero.sampling import eos_ids

    model, tok = load(args.model)
    gc = gen_config(model, tok, args)
    eos = eos_ids(gc)
    cfg = model.config
    print(f"model {args.model}: {sum(p.numel() for p in model.parameters()):,} parameters, vocab {cfg.vocab_size}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    header = f"{'shape':5} {'method':10} {'thr':>3} {'seconds':>8} {'tokens':>7} {'tok/s':>7} {'floor s':>8} {'ratio':>6} {'kv s':>6} {'GF/s':>5} {'load':>5}  runs"
    for shape in args.shape:
        encs = batches(tok, shape, args)
        rows = max(e["input_ids"].shape[0] for e in encs)
        print(f"\n{shape}: {sum(e['input_ids'].shape[0] for e in encs)} rows in {len(encs)} call(s), max_new {args.max_new}, T {args.temperature}")
        print(header)
        for threads in args.threads:
            torch.set_num_threads(threads)
            gflops = matmul_gflops(cfg, rows)
            gbps = copy_gbps()
            if "fast-compile" in args.methods:  # compile once, timed: the price a run pays first
                t = time.perf_counter()
                run_once("fast-compile", model, encs[:1], gc, args.seed)
                first = time.perf_counter() - t
                t = time.perf_counter()
                run_once("fast-compile", model, encs[:1], gc, args.seed)
                print(f"      fast-compile: first call {first:.1f} s, second {time.perf_counter() - t:.1f} s "
                      f"(compile ~ the difference; inductor's disk cache makes later processes cheaper)")
            # round-robin over methods, so a change in the machine's load hits them alike
            results = {m: [] for m in args.methods}
            for _ in range(args.repeats):
                for method in args.methods:
                    seconds, outs = run_once(method, model, encs, gc, args.seed)
                    results[method].append((seconds, *lengths(encs, outs, eos)))
            for method in args.methods:
                runs_ = sorted(results[method], key=lambda r: r[0])
                seconds, p_lens, c_lens = runs_[len(runs_) // 2]
                tokens = sum(c_lens)
                floor = fastgen.flop_floor(cfg, p_lens, c_lens)
                floor_s = floor["total"] / (gflops * 1e9)
                itemsize = 2 if method.endswith("-bf16kv") else 4
                kv_s = kv_read_bytes(cfg, p_lens, c_lens, itemsize) / (gbps / 2 * 1e9)  # read-only traffic
                runs = " ".join(f"{r[0]:.2f}" for r in results[method])
                print(
                    f"{shape:5} {method:10} {threads:>3} {seconds:8.2f} {tokens:7d} {tokens / seconds:7.0f} "
                    f"{floor_s:8.2f} {seconds / floor_s:6.1f} {kv_s:6.2f} {gflops:5.0f} {os.getloadavg()[0]:5.2f}  {runs}",
                    flush=True,
                )
            print(
                f"      floor of the last run: {floor['total'] / 1e9:.2f} GFLOP (matmul {floor['matmul'] / 1e9:.2f}, "
                f"attention {floor['attention'] / 1e9:.2f}, lm_head {floor['lm_head'] / 1e9:.2f}); matmul "
                f"{gflops:.0f} GFLOP/s, copy {gbps:.1f} GB/s at {threads} thread(s); mean completion "
                f"{sum(c_lens) / len(c_lens):.0f} tokens, longest {max(c_lens)}"
            )


if __name__ == "__main__":
    main()
