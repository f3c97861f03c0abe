"""What length buckets save in the GRPO update (tinyzero.buckets), at the recipe's real shapes.

    python benchmarks/update_buckets.py --model runs/nano      # a trained run: its completions are long
    python benchmarks/update_buckets.py --model runs/nano --buckets 1 2 4 8 --repeats 5

It samples one generation batch as the recipe does (16 train prompts x 16 completions, the
recipe's temperature and length limit, tinyzero.fastgen), then times, for each bucket count,
what TRL does with it over the 4 steps it serves: the old log-probs of all 256 completions (no
grad), then 4 updates, each a forward and backward on 64 of them. It prints the best of ``--repeats`` per count,
the padding TRL scores (the batch's longest completion against the mean), the FLOP floor of
the same work at the matmul rate measured here, and checks that every count gives the same
log-probs inside the completion mask (to float rounding). Time it on an idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import platform
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="nano", help="a model folder or run (default: the shipped base model)")
    ap.add_argument("--buckets", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the recipe's update runs at 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    from trl import GRPOTrainer
    from trl.trainer.utils import add_fused_lm_head

    from tinyzero import buckets, fastgen, train
    from tinyzero.models import load_model_and_tokenizer
    from tinyzero.tasks.data import load_task_data

    sys.path.insert(0, str(REPO / "benchmarks"))
    from speed import matmul_rate

    torch.set_num_threads(args.threads)
    script, grpo, model_args = train.parse_args([])
    model, tok = load_model_and_tokenizer(args.model, model_args)
    rows = load_task_data(script.dataset_name, split="train", template=script.template).shuffle(seed=args.seed).select(range(16))
    prompts = [r["prompt"] for r in rows for _ in range(grpo.num_generations)]
    enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left")
    model.generation_config.update(do_sample=True, temperature=grpo.temperature, top_p=grpo.top_p, top_k=None,
                                   max_new_tokens=grpo.max_completion_length)  # fmt: skip
    torch.manual_seed(args.seed)
    with torch.no_grad():
        seqs = fastgen.generate(model, enc["input_ids"], enc["attention_mask"], model.generation_config)
    P = enc["input_ids"].size(1)
    completion = seqs[:, P:]
    # TRL's completion mask: 1 up to and including the first eos, 0 after
    is_eos = completion == tok.eos_token_id
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), completion.size(1))
    cmask = (torch.arange(completion.size(1))[None] <= first[:, None]).long()
    mask = torch.cat([enc["attention_mask"], cmask], dim=1)
    lengths = cmask.sum(1)
    W = completion.size(1)

    add_fused_lm_head(model, temperature=grpo.temperature, outputs=("log_probs", "entropy"))
    fake = types.SimpleNamespace(accelerator=types.SimpleNamespace(autocast=contextlib.nullcontext))
    score = functools.partial(GRPOTrainer._get_per_token_logps_and_entropies.__wrapped__, fake)
    mb = grpo.per_device_train_batch_size
    # TRL shuffles the generation batch, then splits it into steps_per_generation updates
    parts = torch.randperm(seqs.size(0), generator=torch.Generator().manual_seed(args.seed)).split(mb)

    def one_generation(fn):
        with torch.no_grad():
            old, _, _ = fn(model, seqs, mask, W, batch_size=mb)
        for part in parts:
            lp, _, _ = fn(model, seqs[part], mask[part], W, compute_entropy=True)
            (lp * cmask[part]).sum().backward()
            model.zero_grad(set_to_none=True)
        return old

    ref = None
    times = {}
    for n in args.buckets:
        fn = score if n == 1 else buckets.bucketed(score, n)
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            old = one_generation(fn)
            best = min(best, time.perf_counter() - t)
        times[n] = best
        if ref is None:
            ref = old
        gap = (old - ref)[cmask.bool()].abs().max().item()
        assert gap < 1e-4, f"{n} buckets: log-probs differ by {gap}"

    # The floor: 2 x parameters x tokens per forward, 3 forwards' worth for forward + backward,
    # on the real tokens only (prompt + completion), at the matmul rate measured for these shapes.
    params = sum(p.numel() for p in model.parameters())
    real_all = int(mask.sum())
    flops = 2 * params * real_all + 6 * params * real_all
    # The rate as speed.py measures it for the update (the model's matmul shapes at an update's
    # rows, best of 1 and 2 threads), so the two benchmarks' floors agree.
    rate = matmul_rate(model.config, int(mb * (P + lengths.float().mean())))
    torch.set_num_threads(args.threads)
    floor = flops / rate
    print(f"# benchmarks/update_buckets.py, {datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, "
          f"{args.threads} threads, model {args.model}")  # fmt: skip
    print(f"command: python {' '.join(['benchmarks/update_buckets.py', *(argv if argv is not None else sys.argv[1:])])}")
    print(f"batch: {seqs.size(0)} completions, mean {lengths.float().mean():.1f} tokens, longest {int(lengths.max())}; "
          f"prompt width {P}; TRL scores {seqs.size(0)} x {P + W} positions for {real_all} real tokens "
          f"({seqs.size(0) * (P + W) / real_all:.2f}x)")  # fmt: skip
    print(f"floor (6 x params x real tokens for the updates, 2 x for the old log-probs, at {rate / 1e9:.0f} GFLOP/s): {floor:.3f} s")
    first = args.buckets[0]
    print(f"| buckets | old log-probs + {len(parts)} updates (s) | vs {first} bucket(s) | vs floor |")
    print("| ---: | ---: | ---: | ---: |")
    for n, s in times.items():
        print(f"| {n} | {s:.3f} | {times[first] / s:.2f}x | {s / floor:.1f}x |")


if __name__ == "__main__":
    main()
