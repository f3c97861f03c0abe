"""Where one fastgen sampling call's time goes: its parts, its floors, its ops (issue 14).

    python benchmarks/sampling_profile.py --model runs/nano            # the GRPO-shaped call
    python benchmarks/sampling_profile.py --model runs/nano --main /tmp/m  # also: fastgen's share of a main command

For the GRPO-shaped call of ``benchmarks/sampling_speed.py`` (16 prompts x 16 rows, the recipe's
sampling settings) at 1 and 2 workers, one torch thread:
- the wall time split into the decode steps (``_step_shards``), the cache's growth
  (``_grow``), the prefill, and the rest, which is the calling thread's bookkeeping (recording
  tokens, finding finished rows, compaction);
- the call's floors, measured in the same process: its FLOPs (``fastgen.flop_floor``) at the
  matmul rate of 1 and 2 threads, and its KV-cache reads at the copy rate;
- a ``torch.profiler`` table of the 1-worker call, by op.

With ``--main DIR``: the main command (``python -m tinyzero.train``, output in DIR) with
``fastgen.generate`` timed, to compare its calls' sum with TRL's ``time/generation`` and
``time/eval`` (what TRL adds around the sampler). It takes the main command's minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

import sampling_speed as ss
from tinyzero import fastgen


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="nano", help="a nano save_pretrained folder (a trained one samples long completions), 'nano' or 'random'")
    ap.add_argument("--repeats", type=int, default=2, help="calls per worker count")
    ap.add_argument("--ops", type=int, default=15, help="rows of the profiler table (0: no profile)")
    ap.add_argument("--main", default=None, metavar="DIR", help="also run the main command into DIR with fastgen timed")
    ap.add_argument("--prompts", type=int, default=16, help="the call's prompts (x --generations rows)")
    ap.add_argument("--generations", type=int, default=16)
    ap.add_argument("--max_new", type=int, default=256)
    return ap.parse_args(argv)


def split_call(model, enc, gc, workers: int) -> dict:
    """One call's wall time and its parts (the private functions are timed by wrapping them)."""
    parts = {"prefill": 0.0, "decode steps": 0.0, "cache growth": 0.0}
    names = {"_prefill": "prefill", "_step_shards": "decode steps", "_grow": "cache growth"}
    originals = {n: getattr(fastgen, n) for n in names}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[names[name]] += time.perf_counter() - start

        return wrapper

    try:
        for name, fn in originals.items():
            setattr(fastgen, name, timed(name, fn))
        torch.manual_seed(0)
        start = time.perf_counter()
        out = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, **fastgen.SAMPLER_OPTIONS["fastgen"], workers=workers)
        total = time.perf_counter() - start
    finally:
        for name, fn in originals.items():
            setattr(fastgen, name, fn)
    return {"total": total, **parts, "bookkeeping": total - sum(parts.values()), "out": out}


def main_command_share(out_dir: str) -> str:
    """Run the main command with fastgen.generate timed; its calls' sum beside TRL's timers."""
    from tinyzero import train

    calls = []
    original = fastgen.generate

    def timed(model, input_ids, *args, **kwargs):
        start = time.perf_counter()
        seqs = original(model, input_ids, *args, **kwargs)
        calls.append((time.perf_counter() - start, input_ids.shape[0]))
        return seqs

    fastgen.generate = timed  # _fast_generate_method looks it up in the module at each call
    try:
        train.main(*train.parse_args(["--output_dir", out_dir]))
    finally:
        fastgen.generate = original
    rows = [json.loads(line) for line in open(Path(out_dir) / "metrics.jsonl")]
    gen = sum(r["time/generation"] for r in rows if "time/generation" in r)
    ev = sum(r["time/eval"] for r in rows if "time/eval" in r)
    by_rows = {}
    for seconds, rows_ in calls:  # the recipe's GRPO calls have 256 rows, its eval calls 250
        by_rows.setdefault(rows_, []).append(seconds)
    calls_ = "; ".join(f"{len(v)} calls of {k} rows {sum(v):.1f} s" for k, v in sorted(by_rows.items(), reverse=True))
    return f"main command into {out_dir}: fastgen.generate {calls_}; TRL time/generation summed {gen:.1f} s, time/eval summed {ev:.1f} s"


def main(argv=None) -> int:
    args = parse(argv)
    from tinyzero.sampling import eos_ids

    model, tok = ss.load(args.model)
    opts = ss.parse(["--model", args.model, "--prompts", str(args.prompts), "--generations", str(args.generations), "--max_new", str(args.max_new)])
    gc = ss.gen_config(model, tok, opts)
    enc = ss.batches(tok, "grpo", opts)[0]
    torch.set_num_threads(1)
    print(f"# benchmarks/sampling_profile.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, model {args.model}")
    out = None
    for _ in range(args.repeats):
        for workers in (1, 2):
            r = split_call(model, enc, gc, workers)
            out = r.pop("out")
            print(f"workers {workers}: " + ", ".join(f"{k} {v:.2f} s" for k, v in r.items()))
    p_lens, c_lens = ss.lengths([enc], [out], eos_ids(gc))
    f = fastgen.flop_floor(model.config, p_lens, c_lens)
    kv = ss.kv_read_bytes(model.config, p_lens, c_lens)
    print(
        f"the call: {f['tokens']} tokens, mean completion {sum(c_lens) / len(c_lens):.0f}, longest {max(c_lens)}; "
        f"{f['total'] / 1e9:.1f} GFLOP (matmul {f['matmul'] / 1e9:.1f}, lm_head {f['lm_head'] / 1e9:.1f}, "
        f"attention {f['attention'] / 1e9:.1f}); KV reads {kv / 1e9:.1f} GB"
    )
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rate, copy = ss.matmul_gflops(model.config, len(c_lens)), ss.copy_gbps()
        print(
            f"floors at {threads} thread(s): matmul {rate:.0f} GFLOP/s -> {f['total'] / rate / 1e9:.2f} s "
            f"(matmuls and lm_head {(f['matmul'] + f['lm_head']) / rate / 1e9:.2f} s); copy {copy:.0f} GB/s -> KV reads "
            f"{kv / (copy / 2) / 1e9:.2f} s (read-only traffic, as sampling_speed.py)"
        )
    import speed  # speed.py's own measure of the rate, which its sampling floor takes

    best = speed.matmul_rate(model.config, len(c_lens))
    print(f"floor at speed.py's matmul_rate (best of 1 and 2 threads): {best / 1e9:.0f} GFLOP/s -> {f['total'] / best:.2f} s")
    torch.set_num_threads(1)
    if args.ops:
        from torch.profiler import ProfilerActivity, profile

        torch.manual_seed(0)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc, **fastgen.SAMPLER_OPTIONS["fastgen"], workers=1)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.ops))
    if args.main:
        print(main_command_share(args.main))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
