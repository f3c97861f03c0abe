"""How long can a useful search be on the nano task? The thinking of a perfect searcher.

    python benchmarks/analysis/search_bound.py                                        # the held-out split
    python benchmarks/analysis/search_bound.py --grid benchmarks/results/lr2e-4/grid.json
    python benchmarks/analysis/search_bound.py --split train
    python benchmarks/analysis/search_bound.py --pairings all     # a writer that may start with any two numbers

The nano corpus's writer (``tinyzero.nano.corpus``) tries the 9 chains ``(a o1 b) o2 c`` over
``+ * -``, numbers in the prompt's order (``--pairings all``: any two first, 27 chains), each
once, in a random order, and stops at a hit.
The perfect searcher of that kind never slips, never repeats, never self-checks, stops at its
first hit, and after its last miss answers. Its thinking is therefore the longest thinking that
still buys something: every line past it is a repeat or a re-check. This prints, for the
shipped split, how many problems some chain reaches (the accuracy ceiling of such a search)
and the perfect searcher's expected attempts and thinking characters, computed exactly (an
attempt in random order is tried iff it comes before every hit: probability 1/(h+1) for a
miss, 1/h for one of h hits), thinking measured as the eval measures it
(``tinyzero.stats.thinking_length``: the lines joined by newlines).

With ``--grid`` (a ``robustness.py`` grid.json), it prints each run's base and final thinking
beside 3x the base, the thinking issue 12 asks every run to reach, and whether 3x the base
exceeds what the perfect searcher writes. A model above the bound is spending the extra
characters on repeats and re-checks; a target above it cannot be met by searching better.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from tinyzero.cli import ArgumentParser
from tinyzero.nano.corpus import PAIRINGS, chains, check_line
from tinyzero.tasks.data import load_task_data

THINKING_X = 3.0  # issue 12: every run's thinking >= 3x its base model's


def perfect_search(nums: list[int], target: int, pairings: str = "prompt") -> dict:
    """The perfect searcher on one problem: its hit chains and expected attempts and characters."""
    lines = [(check_line(att, target)[0], att.value == target) for att in chains(nums, pairings)]
    h = sum(hit for _, hit in lines)
    p_tried = [Fraction(1, h) if hit else Fraction(1, h + 1) for _, hit in lines]
    attempts = sum(p_tried)
    # thinking: the tried lines joined by "\n", so one newline fewer than lines
    chars = sum(p * len(text) for p, (text, _) in zip(p_tried, lines)) + attempts - 1
    return {"hits": h, "attempts": attempts, "chars": chars}


def bound(rows: list[dict], pairings: str = "prompt") -> dict:
    """The perfect searcher over ``rows`` (dicts with nums and target): means and shares."""
    per = [perfect_search(list(r["nums"]), r["target"], pairings) for r in rows]
    n_chains = len(chains(list(rows[0]["nums"]), pairings))
    n = len(per)
    return {
        "problems": n,
        "hit_chains": {k: sum(p["hits"] == k for p in per) for k in sorted({p["hits"] for p in per})},
        "reachable": sum(p["hits"] > 0 for p in per) / n,
        "attempts": float(sum(p["attempts"] for p in per) / n),
        "chars": float(sum(p["chars"] for p in per) / n),
        "chains": n_chains,
        "attempts_reachable": float(sum(p["attempts"] for p in per if p["hits"]) / max(1, sum(p["hits"] > 0 for p in per))),
    }


def grid_rows(grid: dict, chars_bound: float) -> list[dict]:
    """Each run of a robustness grid against the bound."""
    out = []
    for row in grid["rows"]:
        need = THINKING_X * row["base_thinking"]
        out.append({
            "run": f"p{row['pretrain_seed']}-g{row['grpo_seed']}",
            "base": row["base_thinking"],
            "final": row["final_thinking"],
            "need": need,
            "need_over_bound": need > chars_bound,
            "final_over_bound": row["final_thinking"] > chars_bound,
            "repeats": row.get("final search/repeat_rate"),
        })
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="countdown_nano")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pairings", default="prompt", choices=PAIRINGS, help="the writer's chains (tinyzero.nano.corpus)")
    parser.add_argument("--grid", nargs="*", default=[], help="robustness.py grid.json files")
    args = parser.parse_args(argv)
    rows = list(load_task_data(args.dataset, split=args.split, template="nano"))
    b = bound(rows, args.pairings)
    print(f"{args.dataset} {args.split}, {b['chains']} chains ({args.pairings}): {b['problems']} problems; problems by the number of chains that hit: {b['hit_chains']}")
    print(f"reachable by a chain search (its accuracy ceiling): {b['reachable']:.3f}")
    print(f"perfect searcher: {b['attempts']:.2f} attempts ({b['attempts_reachable']:.2f} where a chain hits, {b['chains']} where none does), "
          f"{b['chars']:.1f} thinking characters")  # fmt: skip
    record = {"bound": b, "grids": {}}
    for path in args.grid:
        if not Path(path).is_file():
            raise SystemExit(f"{path}: no such file")
        try:
            grid = json.loads(Path(path).read_text())
            runs = grid_rows(grid, b["chars"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SystemExit(f"{path}: not a robustness.py grid.json ({type(e).__name__}: {e})")
        record["grids"][path] = runs
        print(f"\n{path}")
        print(f"{'run':>7} {'base':>6} {'3x base':>8} {'final':>6} {'final repeats':>14}  3x base above the perfect searcher's {b['chars']:.0f}?")
        for r in runs:
            rep = "" if r["repeats"] is None else f"{r['repeats']:.2f}"
            print(f"{r['run']:>7} {r['base']:6.0f} {r['need']:8.0f} {r['final']:6.0f} {rep:>14}  {'yes' if r['need_over_bound'] else 'no'}")
    return record


if __name__ == "__main__":
    main()
