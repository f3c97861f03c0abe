"""torch threads 1 vs 2 for nano sampling and for one GRPO update step, idle or with a busy core.

    python benchmarks/thread_check.py --model nano
    python benchmarks/thread_check.py --busy 1      # with one spinning process on the other core

Sampling: the GRPO shape (16 prompts x 16 rows), --max_new tokens, HF generate and fastgen.
Update: what one GRPO step's loss costs on the CPU: forward + backward of the policy over
--update_rows completions of --update_len tokens (recipes/nano.yaml: 64 rows, prompt + up to
256 completion tokens) and an AdamW step. Each timing is the median of --repeats; the load
average is printed with it. --busy N starts N ``while True: pass`` processes for the duration
(and ends them, by pid).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="nano", help="a model folder or 'nano' (the recipe's base model)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--max_new", type=int, default=64)
    ap.add_argument("--update_rows", type=int, default=64)
    ap.add_argument("--update_len", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, default=0, help="spinning processes to run alongside")
    ap.add_argument("--parts", nargs="+", default=["hf", "fast", "update"], choices=["hf", "fast", "update"])
    args = ap.parse_args(argv)

    from tinyzero import fastgen
    from tinyzero.tasks.data import load_task_data
    from tinyzero.sampling import sampling_config
    from tinyzero.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(args.model)
    rows = load_task_data("countdown_nano", split="train", template="nano")
    enc = tok([rows[i]["prompt"] for i in range(16) for _ in range(16)], return_tensors="pt", padding=True, padding_side="left")
    gc = sampling_config(model, tok, args.max_new, temperature=0.6)
    ids = torch.randint(3, model.config.vocab_size, (args.update_rows, args.update_len))
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)  # lr 0: the weights stay as loaded

    def update():
        model.train()
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()
        model.eval()

    parts = {
        "hf": lambda: model.generate(**enc, generation_config=gc),
        "fast": lambda: fastgen.generate(model, enc["input_ids"], enc["attention_mask"], gc),
        "update": update,
    }
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(0.5 if spinners else 0)
        print(f"busy spinners {args.busy}; load at start {os.getloadavg()[0]:.2f}")
        for threads in args.threads:
            torch.set_num_threads(threads)
            for name in args.parts:
                torch.manual_seed(0)
                parts[name]()  # warm-up
                med, times = median_time(parts[name], args.repeats)
                print(f"{name:6} threads {threads}: {med:6.2f} s  (runs {' '.join(f'{t:.2f}' for t in times)}; "
                      f"load {os.getloadavg()[0]:.2f})", flush=True)
    finally:
        for p in spinners:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
