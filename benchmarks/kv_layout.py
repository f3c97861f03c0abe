"""The decode step's attention against the memory it reads: the KV-cache layout of
``tinyzero.fastgen`` (attn "bmm") beside a transposed V cache, at the GRPO batch's shard shape.

    python benchmarks/kv_layout.py            # 1 thread, a worker's shard of 128 rows

Per context length C (the cache's capacity): microseconds per call (best of 3 runs of --n calls)
of the two batched matmuls of one layer (scores q.K^T and p.V), the GB/s at which they read the
cache, the copy bandwidth measured in the same run (read + write of a 64 MB buffer: the memory
floor), and the time and bits of a transposed V cache ((hd, C) per row and head: V^T.p), with p
as a strided view and as a contiguous column (torch takes another kernel for each).
--dtypes bfloat16 adds the same matmuls on a cache kept in bfloat16 (other results, half the bytes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampling_speed import copy_gbps  # noqa: E402 (the copy floor speed.py and sampling_speed.py print)


def bench(f, n):
    for _ in range(5):
        f()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=128, help="rows of one worker's shard (256 / 2 workers)")
    ap.add_argument("--kv_heads", type=int, default=2)
    ap.add_argument("--head_dim", type=int, default=64)
    ap.add_argument("--contexts", type=int, nargs="+", default=[64, 160, 288])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--dtypes", nargs="*", default=[], choices=["bfloat16", "float16"], help="also time q.K^T and p.V in these")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, KV, hd = args.rows, args.kv_heads, args.head_dim
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} thread(s), load {os.getloadavg()[0]:.2f}")
    print(f"copy bandwidth (read + write): {copy_gbps():.1f} GB/s")
    print("| C | K or V MB | q.K^T us | GB/s | p.V us | GB/s | V^T.p us | same bits | V^T.p, p contiguous, us | same bits |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with torch.inference_mode():
        for C in args.contexts:
            kc, vc = torch.randn(b * KV, C, hd), torch.randn(b * KV, C, hd)
            vt = vc.transpose(1, 2).contiguous()
            q = torch.randn(b * KV, 1, hd)
            p = torch.softmax(3 * torch.randn(b * KV, 1, C), -1)
            mb = kc.numel() * 4 / 1e6
            ts = bench(lambda: torch.bmm(q, kc.transpose(1, 2)), args.n)
            tv = bench(lambda: torch.bmm(p, vc), args.n)
            tt = bench(lambda: torch.bmm(vt, p.transpose(1, 2)), args.n)
            pc = p.reshape(b * KV, C, 1)  # the same numbers as a contiguous column: another kernel
            tc = bench(lambda: torch.bmm(vt, pc), max(1, args.n // 10))
            ref = torch.bmm(p, vc)
            same = torch.equal(ref, torch.bmm(vt, p.transpose(1, 2)).transpose(1, 2))
            same_c = torch.equal(ref, torch.bmm(vt, pc).transpose(1, 2))
            print(
                f"| {C} | {mb:.1f} | {ts * 1e6:.0f} | {mb / 1e3 / ts:.1f} | {tv * 1e6:.0f} | {mb / 1e3 / tv:.1f} "
                f"| {tt * 1e6:.0f} | {same} | {tc * 1e6:.0f} | {same_c} |"
            )
            for name in args.dtypes:
                dt = getattr(torch, name)
                k2, v2, q2, p2 = kc.to(dt), vc.to(dt), q.to(dt), p.to(dt)
                ts2 = bench(lambda: torch.bmm(q2, k2.transpose(1, 2)), args.n)
                tv2 = bench(lambda: torch.bmm(p2, v2), args.n)
                print(f"|   {name} | {mb / 2:.1f} | {ts2 * 1e6:.0f} | {mb / 2e3 / ts2:.1f} | {tv2 * 1e6:.0f} | {mb / 2e3 / tv2:.1f} | | | | |")


if __name__ == "__main__":
    main()
