"""Write tinyzero's shipped datasets: data/<name>/{train,test}.jsonl and their manifests.

    python data/prepare.py                  # all datasets (a few minutes on one CPU core)
    python data/prepare.py countdown_nano   # only some
    python data/prepare.py --check          # regenerate in memory, compare, write nothing

Deterministic (fixed seeds, sorted JSON keys), so running it again rewrites identical
bytes. Each split gets a manifest with the generator, its parameters, the seed, the row
count and the jsonl's sha256, which ``tinyzero.data.load_task_data`` verifies.

Test problems are drawn first and never appear in train: a Countdown problem is its sorted
numbers plus target, and a multiplication problem excludes its commuted form too. When a
space has fewer distinct problems than requested (countdown_nano, multiplication), train
takes every remaining problem, and the manifest says so.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script from a checkout, installed or not

from tinyzero.cli import ArgumentParser  # noqa: E402
from tinyzero.tasks import TASKS  # noqa: E402

SEED = 1234
# name -> task, generator parameters, requested rows per split
DATASETS: dict[str, dict] = {
    "countdown": {  # TinyZero's Countdown: 3-4 numbers in 1..99, targets 1..100
        "task": "countdown",
        "params": {"num_count": [3, 4], "num_range": [1, 99], "target_range": [1, 100]},
        "rows": {"test": 500, "train": 20000},
    },
    "countdown_nano": {  # sized for the ~1M-parameter nano model: 3 numbers up to 9 (every
        # value of a two-step chain is below 1000, so one number token), targets 1..100
        "task": "countdown",
        "params": {"num_count": 3, "num_range": [1, 9], "target_range": [1, 100]},
        "rows": {"test": 500, "train": 20000},
    },
    "multiplication": {  # TinyZero's second task: 2-digit x 2-digit
        "task": "multiplication",
        "params": {"digits_a": 2, "digits_b": 2},
        "rows": {"test": 500, "train": 10000},
    },
}


def _tuples(params: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def build(name: str) -> dict[str, tuple[bytes, dict]]:
    """{split: (jsonl bytes, manifest)} for one dataset, without touching the disk."""
    spec = DATASETS[name]
    task, params, requested = TASKS[spec["task"]], _tuples(spec["params"]), spec["rows"]
    generator = f"tinyzero.tasks.{task.name}.generate"
    test = task.generate(requested["test"], seed=SEED, **params)
    leak = task.leak_keys(test)
    note = "test problems are drawn first"
    space = task.space(params)
    remaining = None if space is None else [k for k in space if k not in leak]
    if remaining is not None and len(remaining) <= requested["train"]:
        rng = random.Random(SEED + 1)
        rng.shuffle(remaining)
        train = [task.row_from_key(key, rng) for key in remaining]
        generator = f"tinyzero.tasks.{task.name}.all_problems minus test, shuffled"
        note = (
            f"requested {requested['train']} train rows, but only {len(remaining)} distinct "
            "problems exist outside the test split: train holds all of them"
        )
    else:
        train = task.generate(requested["train"], seed=SEED + 1, exclude=leak, **params)
    out = {}
    for split, rows, seed, gen in (
        ("test", test, SEED, f"tinyzero.tasks.{task.name}.generate"),
        ("train", train, SEED + 1, generator),
    ):
        data = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows)
        blob = data.encode()
        out[split] = (
            blob,
            {
                "name": name,
                "task": task.name,
                "split": split,
                "rows": len(rows),
                "requested_rows": requested[split],
                "sha256": hashlib.sha256(blob).hexdigest(),
                "generator": gen,
                "params": spec["params"],
                "seed": seed,
                "exclusion": task.exclusion if split == "train" else None,
                "note": note if split == "train" else None,
                "written_by": "python data/prepare.py",
            },
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python data/prepare.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"datasets (default: all of {list(DATASETS)})")
    parser.add_argument(
        "--check", action="store_true", help="compare with the files; write nothing"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(DATASETS)}")
    stale = 0
    for name in args.names or list(DATASETS):
        for split, (blob, manifest) in build(name).items():
            path = HERE / name / f"{split}.jsonl"
            manifest_path = HERE / name / f"{split}.manifest.json"
            manifest_text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
            if args.check:
                same = (
                    path.is_file()
                    and path.read_bytes() == blob
                    and manifest_path.is_file()
                    and manifest_path.read_text() == manifest_text
                )
                stale += not same
                print(f"{'ok   ' if same else 'STALE'} {path.relative_to(HERE.parent)}")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
            manifest_path.write_text(manifest_text)
            print(f"wrote {path.relative_to(HERE.parent)}: {manifest['rows']} rows")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
