"""How fast the nano model samples: HF generate vs tinyzero.fastgen, against the arithmetic floor.

    python benchmarks/perf/sampling_speed.py                      # GRPO shape, 1 thread, hf + fast
    python benchmarks/perf/sampling_speed.py --shape eval --threads 1 2
    python benchmarks/perf/sampling_speed.py --methods hf fast exact --repeats 3 --max_new 256

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
tokens generated (completion tokens, eos included), tokens/s, and the floor of the same work
(``tinyzero.roofline.sampling_floor``: the linear layers' FLOPs at the matmul rate measured
here for the decode step's own shapes, plus the attention's KV-cache reads at the measured
copy bandwidth); ratio = measured seconds / floor seconds; ``kv s``: the attention's part of
the floor, which grows with the context. The rates are the machine's (the best of 1 thread and
all cores), the same for every --threads row. Load (``os.getloadavg``) is printed with each row.

``--ops N``: after the table, ``torch.profiler``'s N costliest ops of one ``fast`` call of the
first shape at one thread (where a call's time goes beyond its floor).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from tinyzero import roofline

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
    ap.add_argument("--ops", type=int, default=0, help="rows of a torch.profiler table of one fast call (0: none)")
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
    from tinyzero.generation import sampling_config

    return sampling_config(model, tok, args.max_new, temperature=args.temperature, top_p=1.0, top_k=0)


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
    from tinyzero.generation import eos_ids

    model, tok = load(args.model)
    gc = gen_config(model, tok, args)
    eos = eos_ids(gc)
    cfg = model.config
    print(f"model {args.model}: {sum(p.numel() for p in model.parameters()):,} parameters, vocab {cfg.vocab_size}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    header = f"{'shape':5} {'method':10} {'thr':>3} {'seconds':>8} {'tokens':>7} {'tok/s':>7} {'floor s':>8} {'ratio':>6} {'kv s':>6} {'GF/s':>5} {'load':>5}  runs"
    bandwidth = roofline.measure_bandwidth()
    for shape in args.shape:
        encs = batches(tok, shape, args)
        rows = max(e["input_ids"].shape[0] for e in encs)
        rates = roofline.Rates(roofline.measure_matmul_rate(cfg, rows), bandwidth)
        gflops, gbps = rates.matmul_flops_per_s / 1e9, bandwidth / 1e9
        print(f"\n{shape}: {sum(e['input_ids'].shape[0] for e in encs)} rows in {len(encs)} call(s), max_new {args.max_new}, T {args.temperature}")
        print(header)
        for threads in args.threads:
            torch.set_num_threads(threads)
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
                itemsize = 2 if method.endswith("-bf16kv") else 4
                # the weights stay float32 (4 bytes) whatever the KV cache's dtype
                floor = roofline.sampling_floor(cfg, p_lens, c_lens, rates, kv_itemsize=itemsize,
                                                weight_bytes=roofline.param_counts(cfg)["total"] * 4)
                floor_s, kv_s = floor["s"], floor["attention_s"]
                runs = " ".join(f"{r[0]:.2f}" for r in results[method])
                print(
                    f"{shape:5} {method:10} {threads:>3} {seconds:8.2f} {tokens:7d} {tokens / seconds:7.0f} "
                    f"{floor_s:8.2f} {seconds / floor_s:6.1f} {kv_s:6.2f} {gflops:5.0f} {os.getloadavg()[0]:5.2f}  {runs}",
                    flush=True,
                )
            f = roofline.sampling_flops(cfg, p_lens, c_lens)
            print(
                f"      floor of the last run: {f['total'] / 1e9:.2f} GFLOP (matmul {f['matmul'] / 1e9:.2f}, "
                f"attention {f['attention'] / 1e9:.2f}, lm_head {f['lm_head'] / 1e9:.2f}), KV reads {floor['kv_bytes'] / 1e9:.2f} GB; "
                f"matmul {gflops:.0f} GFLOP/s, copy {gbps:.1f} GB/s (best of 1 thread and all cores); mean completion "
                f"{sum(c_lens) / len(c_lens):.0f} tokens, longest {max(c_lens)}"
            )
    if args.ops:
        print(op_table(model, batches(tok, args.shape[0], args)[0], gc, args.ops))


def op_table(model, enc, gc, rows: int) -> str:
    """torch.profiler's costliest ops (self CPU time) of one ``fast`` call at one thread."""
    from torch.profiler import ProfilerActivity, profile

    from tinyzero import fastgen

    torch.set_num_threads(1)
    torch.manual_seed(0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, **fastgen.SAMPLER_OPTIONS["fastgen"])
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


if __name__ == "__main__":
    main()
